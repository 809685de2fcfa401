import { appVersion } from '../../version.js';
import type { Html, Interpolation } from './html.js';
import { html } from './html.js';
import type { ConsoleUser } from './session.js';

/** What every page needs to draw its frame. */
export interface PageFrame {
  /** The console's URL path, e.g. `/console`. */
  readonly base: string;
  readonly user: ConsoleUser | undefined;
  /** The nav entry to mark current. */
  readonly section?: string;
}

const sections = [
  { id: 'overview', path: '', label: 'Overview', admin: false },
  { id: 'networks', path: '/networks', label: 'Networks', admin: false },
  { id: 'tasks', path: '/tasks', label: 'Tasks', admin: false },
  { id: 'compute', path: '/compute', label: 'Compute', admin: false },
  { id: 'identities', path: '/identities', label: 'Identities', admin: true },
  { id: 'audit', path: '/audit', label: 'Audit', admin: true },
  { id: 'backups', path: '/backups', label: 'Backups', admin: true },
  { id: 'maintenance', path: '/maintenance', label: 'Maintenance', admin: true },
] as const;

export function csrfField(user: ConsoleUser): Html {
  return html`<input type="hidden" name="_csrf" value="${user.csrf}" />`;
}

export function page(frame: PageFrame, title: string, body: Interpolation): Html {
  const { base, user } = frame;
  const nav = user
    ? html`<nav class="console-nav" aria-label="Sections">
        <ul>
          <li>
            <a href="${base}/" class="brand"><strong>Athanor</strong></a>
          </li>
        </ul>
        <ul class="console-sections">
          ${sections
            .filter((s) => !s.admin || user.admin)
            .map(
              (s) =>
                html`<li>
                  <a href="${base}${s.path || '/'}" ${s.id === frame.section ? html`aria-current="page"` : ''}
                    >${s.label}</a
                  >
                </li>`,
            )}
          <li>
            <form method="post" action="${base}/signout" class="inline-form">
              ${csrfField(user)}
              <button
                type="submit"
                class="secondary outline"
                title="signed in as ${user.principal.identifier}"
              >
                Sign out ${user.principal.identifier}
              </button>
            </form>
          </li>
        </ul>
      </nav>`
    : html`<nav class="console-nav">
        <ul>
          <li><strong>Athanor</strong></li>
        </ul>
      </nav>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <title>${title} · Athanor</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="${base}/assets/pico.min.css" />
        <link rel="stylesheet" href="${base}/assets/console.css" />
        <script src="${base}/assets/console.js" defer></script>
      </head>
      <body>
        <a class="skip-link" href="#main">Skip to content</a>
        <header class="container">${nav}</header>
        <main class="container" id="main" tabindex="-1">
          <h1>${title}</h1>
          ${body}
        </main>
        <footer class="container"><small>Athanor ${appVersion}</small></footer>
      </body>
    </html>`;
}

/** A message box after an action; `kind` picks its colour. */
export function notice(text: string | undefined, kind: 'ok' | 'error' = 'ok'): Html {
  if (!text) return html``;
  return html`<p class="notice notice-${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`;
}

export function statusBadge(status: string): Html {
  return html`<span class="badge badge-${status}">${status}</span>`;
}

/** "3 min ago"-style age of an ISO instant. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const ms = now - Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const future = ms < 0;
  const s = Math.abs(ms) / 1000;
  const text =
    s < 60
      ? `${Math.round(s)} s`
      : s < 3600
        ? `${Math.round(s / 60)} min`
        : s < 86_400
          ? `${(s / 3600).toFixed(1)} h`
          : `${(s / 86_400).toFixed(1)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

export function time(iso: string | null | undefined): Html {
  if (!iso) return html`<span>never</span>`;
  return html`<time datetime="${iso}" title="${iso}">${age(iso)}</time>`;
}

/** A table that scrolls sideways on a phone instead of overflowing the page. */
export function table(headers: readonly string[], rows: readonly Interpolation[], empty: string): Html {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<div class="overflow-auto">
    <table class="striped">
      <thead>
        <tr>
          ${headers.map((h) => html`<th scope="col">${h}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </div>`;
}

/** Query-string of a link, dropping empty values. */
export function query(params: Readonly<Record<string, string | number | undefined>>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : '';
}
