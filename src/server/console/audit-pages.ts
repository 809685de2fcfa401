import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { listAudit } from '../../service/audit.js';
import type { ConsoleContext } from './context.js';
import { sendPage } from './context.js';
import { html } from './html.js';
import { page, query, statusBadge, table, time } from './layout.js';
import { frameOf, isoOrThrow } from './page-helpers.js';
import type { Query } from './page-helpers.js';

function showAudit(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const q = request.query as Query;
    const since = q.since ? isoOrThrow(q.since, 'since') : undefined;
    const until = q.until ? isoOrThrow(q.until, 'until') : undefined;
    const rows = await listAudit(store, {
      actor: q.actor || undefined,
      action: q.action || undefined,
      since,
      until,
      limit: 500,
    });
    const body = html` <form method="get" class="filters" role="search">
        <label>Actor <input name="actor" value="${q.actor ?? ''}" placeholder="user:alice" /></label>
        <label
          >Action (prefix) <input name="action" value="${q.action ?? ''}" placeholder="identity."
        /></label>
        <label>Since <input name="since" value="${q.since ?? ''}" placeholder="2026-01-31T00:00Z" /></label>
        <label>Until <input name="until" value="${q.until ?? ''}" /></label>
        <button type="submit">Search</button>
      </form>
      <p>
        <a href="${base}/audit${query({ actor: q.actor, action: q.action, since: q.since, until: q.until })}"
          >Link to this search</a
        >; newest first, at most 500.
      </p>
      ${table(
        ['When', 'Actor', 'Action', 'Target', 'Outcome', 'Details'],
        rows
          .slice()
          .reverse()
          .map(
            (r) =>
              html`<tr>
                <td>${time(r.at)}</td>
                <td><a href="${base}/audit${query({ actor: r.actor })}">${r.actor}</a></td>
                <td>${r.action}</td>
                <td>${r.target ?? ''}</td>
                <td>${statusBadge(r.outcome)}</td>
                <td><code>${r.details ?? ''}</code></td>
              </tr>`,
          ),
        'nothing matches',
      )}`;
    return sendPage(reply, page(frame(request, 'audit'), 'Audit log', body));
  };
}

/** The console's pages of the audit log (operators only). */
export const auditPages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  const admin = { config: { consoleAdmin: true } };
  app.get('/audit', admin, showAudit(ctx));
};
