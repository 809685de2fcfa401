import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import * as queueViews from '../../service/queue-views.js';
import type { ConsoleContext } from './context.js';
import { sendPage, userOf } from './context.js';
import { html } from './html.js';
import { page, statusBadge, table, time } from './layout.js';
import { frameOf, queryOf } from './page-helpers.js';

function showCompute(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const user = userOf(request);
    const q = queryOf(request);
    const all = q.all === '1';
    const list = await queueViews.listComputeServices(store, user.principal, {
      activeOnly: !all,
      recentMinutes: 10,
    });
    const body = html` <p>
        <a href="${base}/compute${all ? '' : '?all=1'}"
          >${all ? 'Show live services only' : 'Show deregistered and expired too'}</a
        >
      </p>
      <p class="live-state" id="live-state" aria-live="polite">refreshes by itself</p>
      <div data-live id="compute-live">
        ${table(
          [
            'Name',
            'Identity',
            'Host',
            'State',
            'Registered',
            'Last heartbeat',
            'Leases held',
            'Last 10 min ok / failed',
          ],
          list.map(
            (s) =>
              html`<tr>
                <td>${s.name}</td>
                <td>${s.identity}</td>
                <td>${s.hostname ?? '-'}</td>
                <td>${statusBadge(s.state)}</td>
                <td>${time(s.registeredAt)}</td>
                <td>${time(s.heartbeatAt)}</td>
                <td>${s.leasesHeld}</td>
                <td>${s.recentOk} / ${s.recentFailed}</td>
              </tr>`,
          ),
          all ? 'no compute service has registered' : 'no compute service is live',
        )}
      </div>`;
    return sendPage(reply, page(frame(request, 'compute'), 'Compute services', body));
  };
}

/** The console's pages of the compute services and where they claim. */
export const computePages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  app.get('/compute', showCompute(ctx));
};
