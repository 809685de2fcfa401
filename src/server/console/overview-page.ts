import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { taskStatuses } from '../../domain/task-state.js';
import { getMaintenance } from '../../ops/maintenance.js';
import * as networks from '../../service/networks.js';
import * as queueViews from '../../service/queue-views.js';
import { getMigrationStatus } from '../../store/migrator.js';
import { appVersion } from '../../version.js';
import { completionsChart } from './chart.js';
import type { ConsoleContext } from './context.js';
import { sendPage, userOf } from './context.js';
import { html } from './html.js';
import { page, query, statusBadge, time } from './layout.js';
import { backupSummary, frameOf } from './page-helpers.js';

function showOverview(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const user = userOf(request);
    const principal = user.principal;
    const [byScope, points, services, maintenance, schema] = await Promise.all([
      networks.scopeStatus(store, principal, undefined),
      queueViews.completionsPerMinute(store, principal, 180),
      queueViews.listComputeServices(store, principal, { activeOnly: true, recentMinutes: 10, limit: 20 }),
      getMaintenance(store),
      getMigrationStatus(store),
    ]);
    const totals = queueViews.sumStatusCounts(byScope);
    const backups = user.admin ? await backupSummary(ctx) : undefined;
    const body = html` <p class="live-state" id="live-state" aria-live="polite">refreshes by itself</p>
      <div data-live id="overview-live">
        <section class="cards" aria-label="Tasks by status">
          ${taskStatuses.map(
            (s) =>
              html`<article>
                <h2><a href="${base}/tasks${query({ status: s })}">${s}</a></h2>
                <p class="big" data-status="${s}">${totals[s]}</p>
              </article>`,
          )}
        </section>
        <section>
          <h2>Completions</h2>
          ${completionsChart(points)}
        </section>
        <section class="cards">
          <article>
            <h2><a href="${base}/compute">Live compute services</a></h2>
            <p class="big">${services.length}</p>
            <ul>
              ${services.slice(0, 5).map((s) => html`<li>${s.name} (${s.identity}): ${s.leasesHeld} held, heartbeat ${time(s.heartbeatAt)}</li>`)}
            </ul>
          </article>
          <article>
            <h2>${user.admin ? html`<a href="${base}/maintenance">Maintenance</a>` : 'Maintenance'}</h2>
            <p class="big">${statusBadge(maintenance.on ? 'on' : 'off')}</p>
            ${maintenance.on ? html`<p>${maintenance.reason} (since ${time(maintenance.since)})</p>` : ''}
          </article>
          ${
            backups
              ? html`<article>
                  <h2><a href="${base}/backups">Backups</a></h2>
                  <p>
                    newest:
                    ${backups.newest ? html`<code>${backups.newest.id}</code> ${time(backups.newest.createdAt.toISOString())}` : 'none'}
                  </p>
                  <p>
                    last drill:
                    ${backups.newestVerified ? html`<code>${backups.newestVerified.id}</code> ${time(backups.newestVerified.createdAt.toISOString())}` : 'none'}
                  </p>
                </article>`
              : ''
          }
          <article>
            <h2>Version</h2>
            <p>Athanor ${appVersion}</p>
            <p>schema: migration ${schema.databaseVersion} (this release knows ${schema.releaseVersion})</p>
          </article>
        </section>
      </div>`;
    return sendPage(reply, page(frame(request, 'overview'), 'Overview', body));
  };
}

/** The console's pages of the overview: queue, services, schema, maintenance and backups at a glance. */
export const overviewPage: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  app.get('/', showOverview(ctx));
};
