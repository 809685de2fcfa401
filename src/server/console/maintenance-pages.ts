import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { getMaintenance, setMaintenance } from '../../ops/maintenance.js';
import type { ConsoleContext } from './context.js';
import { actorOf, field, formOf, redirectBack, requireField, sendPage, userOf } from './context.js';
import { html } from './html.js';
import { csrfField, notice, page, statusBadge, time } from './layout.js';
import { frameOf } from './page-helpers.js';
import type { Query } from './page-helpers.js';

function showMaintenance(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const user = userOf(request);
    const q = request.query as Query;
    const state = await getMaintenance(store);
    const body = html` ${notice(q.done)}
      <p>
        Maintenance is
        ${statusBadge(state.on ? 'on' : 'off')}${state.on ? html`: ${state.reason}, since ${time(state.since)} by ${state.by}` : ''}.
      </p>
      <p>While it is on, the APIs answer writes and claims with 503 and reads keep working.</p>
      ${
        state.on
          ? html`<form method="post" action="${base}/maintenance">
              ${csrfField(user)}<input type="hidden" name="on" value="0" /><button type="submit">
                Turn maintenance off
              </button>
            </form>`
          : html`<form method="post" action="${base}/maintenance">
              ${csrfField(user)}<input type="hidden" name="on" value="1" />
              <label
                >Reason <input name="reason" maxlength="500" required placeholder="database upgrade"
              /></label>
              <button type="submit">Turn maintenance on</button>
            </form>`
      }`;
    return sendPage(reply, page(frame(request, 'maintenance'), 'Maintenance', body));
  };
}

function postMaintenance(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const form = formOf(request);
    const on = field(form, 'on') === '1';
    await setMaintenance(
      store,
      actorOf(request),
      on,
      on ? requireField(form, 'reason', 'a reason') : undefined,
    );
    return redirectBack(reply, `${base}/maintenance`, on ? 'maintenance is on' : 'maintenance is off');
  };
}

/** The console's pages of maintenance mode on and off (operators only). */
export const maintenancePages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  const admin = { config: { consoleAdmin: true } };
  app.get('/maintenance', admin, showMaintenance(ctx));
  app.post(
    '/maintenance',
    { config: { consoleAdmin: true, writesInMaintenance: true } },
    postMaintenance(ctx),
  );
};
