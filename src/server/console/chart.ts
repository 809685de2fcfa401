import type { Html } from './html.js';
import { html } from './html.js';

/**
 * A bar chart of completions per minute as inline SVG, drawn on the server: no script, no
 * library, and nothing for the Content-Security-Policy to allow. Each bar has a tooltip.
 */
export function completionsChart(points: readonly { minute: string; completions: number }[]): Html {
  const width = 720;
  const height = 160;
  const left = 34;
  const bottom = 18;
  const plotWidth = width - left;
  const plotHeight = height - bottom - 6;
  const max = Math.max(1, ...points.map((p) => p.completions));
  const barWidth = plotWidth / Math.max(1, points.length);
  const total = points.reduce((sum, p) => sum + p.completions, 0);
  const bars = points.map((p, i) => {
    const h = (p.completions / max) * plotHeight;
    const x = left + i * barWidth;
    return html`<rect
      class="bar"
      x="${x.toFixed(2)}"
      y="${(6 + plotHeight - h).toFixed(2)}"
      width="${Math.max(barWidth - 0.5, 0.5).toFixed(2)}"
      height="${h.toFixed(2)}"
      ><title>${p.minute.replace('T', ' ')} UTC: ${p.completions}</title></rect
    >`;
  });
  const first = points[0]?.minute.slice(11) ?? '';
  const last = points.at(-1)?.minute.slice(11) ?? '';
  return html`<figure>
    <svg
      class="chart"
      viewBox="0 0 ${width} ${height}"
      role="img"
      aria-label="Completions per minute, ${points.length} minutes, ${total} in all, at most ${max} in one minute"
    >
      <line class="axis" x1="${left}" y1="${6 + plotHeight}" x2="${width}" y2="${6 + plotHeight}"></line>
      <line class="axis" x1="${left}" y1="6" x2="${left}" y2="${6 + plotHeight}"></line>
      <text x="${left - 4}" y="12" text-anchor="end">${max}</text>
      <text x="${left - 4}" y="${6 + plotHeight}" text-anchor="end">0</text>
      <text x="${left}" y="${height - 4}">${first} UTC</text>
      <text x="${width}" y="${height - 4}" text-anchor="end">${last} UTC</text>
      ${bars}
    </svg>
    <figcaption>
      Completions per minute over the last ${Math.round(points.length / 60)} hours: ${total} in all.
    </figcaption>
  </figure>`;
}
