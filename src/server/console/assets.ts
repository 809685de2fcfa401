import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The console's static files. Pico comes from its npm package; the rest is written here so the
 * console needs no build step and no file outside the compiled code.
 */
export interface Asset {
  readonly contentType: string;
  readonly body: string;
}

const require = createRequire(import.meta.url);

let pico: string | undefined;
function picoCss(): string {
  pico ??= readFileSync(require.resolve('@picocss/pico/css/pico.min.css'), 'utf8');
  return pico;
}

const consoleCss = `
.skip-link { position: absolute; left: -10000px; }
.skip-link:focus { left: 1rem; top: 1rem; z-index: 10; background: var(--pico-background-color); padding: .5rem; }
.console-nav { flex-wrap: wrap; }
.console-sections { flex-wrap: wrap; }
.console-nav .brand { text-decoration: none; }
.inline-form { display: inline; margin: 0; }
.inline-form button, .row-actions button { width: auto; margin: 0; padding: .25rem .6rem; font-size: .85rem; }
.row-actions { display: flex; gap: .4rem; flex-wrap: wrap; align-items: center; }
.row-actions input, .row-actions select { width: auto; margin: 0; padding: .25rem .5rem; height: auto; }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; }
.filters label { flex: 1 1 10rem; margin: 0; }
.filters button { width: auto; }
.cards { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); }
.cards article { margin: 0; }
.cards h2 { font-size: 1rem; margin-bottom: .5rem; }
.big { font-size: 1.6rem; font-weight: 700; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .8rem; border: 1px solid currentColor; white-space: nowrap; }
.badge-waiting { color: #6b7280; }
.badge-running, .badge-active { color: #2563eb; }
.badge-complete, .badge-ok, .badge-on { color: #15803d; }
.badge-error, .badge-failed, .badge-disabled, .badge-expired, .badge-invalid { color: #b91c1c; }
.badge-deleted, .badge-inactive, .badge-deregistered, .badge-off { color: #6b7280; }
.notice { padding: .75rem 1rem; border-radius: var(--pico-border-radius); border-left: .3rem solid; }
.notice-ok { border-color: #15803d; background: rgba(21, 128, 61, .08); }
.notice-error { border-color: #b91c1c; background: rgba(185, 28, 28, .08); }
.key-once { font-family: var(--pico-font-family-monospace); word-break: break-all; user-select: all; }
.chart { width: 100%; height: auto; max-height: 14rem; }
.chart .bar { fill: #2563eb; }
.chart .axis { stroke: currentColor; stroke-opacity: .3; }
.chart text { fill: currentColor; font-size: 10px; }
pre.error-text { white-space: pre-wrap; word-break: break-word; max-height: 24rem; overflow: auto; }
code, .mono { word-break: break-all; }
.live-state { font-size: .8rem; color: var(--pico-muted-color); }
.empty { color: var(--pico-muted-color); }
td form { margin: 0; }
@media (max-width: 576px) { h1 { font-size: 1.5rem; } .console-sections li { padding: .25rem .4rem; } }
`;

/**
 * Live refresh without inline script: every element with \`data-live\` and an id is re-read from
 * the same URL every few seconds and swapped in place. A region the user is working in (focus,
 * a ticked box) is left alone; a session that ended sends the browser to the sign-in page.
 */
const consoleJs = `'use strict';
(function () {
  var intervalMs = 3000;
  function busy(region) {
    if (region.contains(document.activeElement) && document.activeElement !== document.body) return true;
    return region.querySelector('input[type=checkbox]:checked') !== null;
  }
  function mark(text) {
    var state = document.getElementById('live-state');
    if (state) state.textContent = text;
  }
  function refresh() {
    var regions = document.querySelectorAll('[data-live][id]');
    if (regions.length === 0 || document.hidden) return;
    fetch(window.location.href, { credentials: 'same-origin', cache: 'no-store', headers: { 'x-athanor-live': '1' } })
      .then(function (response) {
        if (response.redirected && /\\/signin(\\?|$)/.test(new URL(response.url).pathname + new URL(response.url).search)) {
          window.location.assign(response.url);
          return null;
        }
        if (!response.ok) { mark('refresh failed (HTTP ' + response.status + '); retrying'); return null; }
        return response.text();
      })
      .then(function (text) {
        if (text === null || text === undefined) return;
        var next = new DOMParser().parseFromString(text, 'text/html');
        regions.forEach(function (region) {
          var fresh = next.getElementById(region.id);
          if (fresh && !busy(region)) region.innerHTML = fresh.innerHTML;
        });
        mark('updated ' + new Date().toLocaleTimeString());
      })
      .catch(function () { mark('server unreachable; retrying'); });
  }
  document.addEventListener('DOMContentLoaded', function () {
    if (document.querySelector('[data-live][id]')) window.setInterval(refresh, intervalMs);
    document.querySelectorAll('[data-confirm]').forEach(function (form) {
      form.addEventListener('submit', function (event) {
        if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
      });
    });
  });
})();
`;

export function consoleAsset(name: string): Asset | undefined {
  switch (name) {
    case 'pico.min.css':
      return { contentType: 'text/css; charset=utf-8', body: picoCss() };
    case 'console.css':
      return { contentType: 'text/css; charset=utf-8', body: consoleCss };
    case 'console.js':
      return { contentType: 'text/javascript; charset=utf-8', body: consoleJs };
    default:
      return undefined;
  }
}
