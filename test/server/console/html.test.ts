import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeHtml, html, raw } from '../../../src/server/console/html.js';

describe('console templates', () => {
  it('escape every interpolated value, in text and in attributes', () => {
    const name = `<img src=x onerror=alert(1)> "quoted" 'single' & \`tick\``;
    const page = html`<p title="${name}">${name}</p>`.text;
    expect(page).toBe(
      '<p title="&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &#39;single&#39; &amp; &#96;tick&#96;">' +
        '&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &#39;single&#39; &amp; &#96;tick&#96;</p>',
    );
  });

  it('insert nested templates and raw text as they are, and escape arrays item by item', () => {
    const items = ['<a>', 'b&c'];
    const list = html`<ul>
      ${items.map((i) => html`<li>${i}</li>`)}
    </ul>`.text.replace(/>\s+</g, '><');
    const page = list + html`${raw('<hr>')}${['<x>']}`.text;
    expect(page).toBe('<ul><li>&lt;a&gt;</li><li>b&amp;c</li></ul><hr>&lt;x&gt;');
  });

  it('drop null, undefined and false, and print numbers and true', () => {
    expect(html`${null}${undefined}${false}${0}${true}`.text).toBe('0true');
  });

  it('never let a tag or attribute quote through, whatever the text', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const out = escapeHtml(text);
        expect(out).not.toMatch(/[<>"'`]/);
        expect(out.replace(/&(amp|lt|gt|quot|#39|#96);/g, '')).not.toContain('&');
      }),
    );
  });
});
