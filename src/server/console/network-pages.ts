import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { Value } from 'typebox/value';
import { AthanorError } from '../../domain/errors.js';
import * as networks from '../../service/networks.js';
import * as queueViews from '../../service/queue-views.js';
import * as tasks from '../../service/tasks.js';
import type { NetworkState } from '../../store/schema.js';
import { NetworkSubmission } from '../schemas.js';
import type { ConsoleContext } from './context.js';
import {
  auditedAction,
  field,
  fields,
  formOf,
  redirectBack,
  requireField,
  sendPage,
  userOf,
} from './context.js';
import { html } from './html.js';
import { csrfField, notice, page, query, statusBadge, table, time } from './layout.js';
import { networkStates } from '../../domain/network-state.js';
import { countsLine, frameOf, number, pick, queryOf, select } from './page-helpers.js';

function showNetworks(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const user = userOf(request);
    const q = queryOf(request);
    const state = pick(q.state, networkStates, 'state');
    const list = await networks.listNetworks(store, user.principal, {
      scope: q.scope || undefined,
      state,
      name: q.name || undefined,
      limit: 200,
    });
    const body = html` ${notice(q.done)}
      <form method="get" class="filters" role="search">
        <label>Scope <input name="scope" value="${q.scope ?? ''}" placeholder="org-*-*" /></label>
        ${select('state', 'State', networkStates, state)}
        <label>Name <input name="name" value="${q.name ?? ''}" /></label>
        <button type="submit">Filter</button>
      </form>
      <div data-live id="networks-live">
        ${table(
          ['Name', 'Scope', 'State', 'Weight', 'Created'],
          list.map(
            (n) =>
              html`<tr>
                <td><a href="${base}/networks/${n.key}">${n.name}</a></td>
                <td>${n.scope}</td>
                <td>${statusBadge(n.state)}</td>
                <td>${n.weight}</td>
                <td>${time(n.createdAt)}</td>
              </tr>`,
          ),
          'no networks match',
        )}
      </div>
      <details>
        <summary>Submit a network</summary>
        <form method="post" action="${base}/networks">
          ${csrfField(user)}
          <label>Scope <input name="scope" required placeholder="org-campaign-project" /></label>
          <label>Name <input name="name" required /></label>
          <label
            >Transformations (JSON list of {name, protocol, inputs})
            <textarea name="transformations" rows="6" required>
[{"name": "hello", "protocol": "echo", "inputs": {"greeting": "hello"}}]</textarea>
          </label>
          <label
            >Tasks per transformation, actioned on the hub
            <input name="tasks" type="number" min="0" max="${tasks.maxTasksPerCreate}" value="1"
          /></label>
          <button type="submit">Submit</button>
        </form>
      </details>`;
    return sendPage(reply, page(frame(request, 'networks'), 'Networks', body));
  };
}

function postNetworks(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const user = userOf(request);
    const form = formOf(request);
    let transformationList: unknown;
    try {
      transformationList = JSON.parse(requireField(form, 'transformations', 'the transformations'));
    } catch (cause) {
      if (cause instanceof AthanorError) throw cause;
      throw new AthanorError(
        'invalid_argument',
        'the transformations are not valid JSON: check the brackets and quotes',
        { cause },
      );
    }
    const submission = {
      scope: requireField(form, 'scope', 'the scope'),
      name: requireField(form, 'name', 'the name'),
      transformations: transformationList,
    };
    if (!Value.Check(NetworkSubmission, submission)) {
      const first = [...Value.Errors(NetworkSubmission, submission)][0];
      throw new AthanorError(
        'validation_failed',
        `the network is not valid: ${first ? `${first.instancePath || 'body'} ${first.message}` : 'check its fields'}`,
      );
    }
    const perTransformation =
      number(field(form, 'tasks'), 'tasks per transformation', 0, tasks.maxTasksPerCreate) ?? 0;
    const submitted = await auditedAction(
      ctx,
      request,
      { action: 'network.submit', target: submission.scope },
      async () => {
        const result = await networks.submitNetwork(store, user.principal, submission);
        let created = 0;
        if (perTransformation > 0) {
          const ids: string[] = [];
          for (const key of new Set(result.transformations)) {
            const made = await tasks.createTasks(store, user.principal, key, { count: perTransformation });
            ids.push(...made.map((t) => t.id));
          }
          await tasks.actionTasks(store, user.principal, result.key, ids);
          created = ids.length;
        }
        return { ...result, tasksCreated: created };
      },
      (r) => ({ network: r.key, created: r.created, tasks: r.tasksCreated }),
    );
    return redirectBack(
      reply,
      `${base}/networks/${submitted.key}`,
      submitted.created
        ? `submitted; ${submitted.tasksCreated} tasks actioned`
        : `this network already existed; ${submitted.tasksCreated} tasks actioned`,
    );
  };
}

function showNetwork(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const user = userOf(request);
    const { key } = request.params as { key: string };
    const q = queryOf(request);
    const network = await networks.getNetwork(store, user.principal, key);
    const [counts, transformations, actioned] = await Promise.all([
      networks.networkStatus(store, user.principal, key),
      networks.listNetworkTransformations(store, user.principal, key, { limit: 200 }),
      tasks.listActionedTasks(store, user.principal, key, { limit: 200 }),
    ]);
    const byTransformation = await queueViews.networkTransformationCounts(
      store,
      user.principal,
      key,
      transformations.map((t) => t.key),
    );
    const body = html` ${notice(q.done)}
      <p>
        ${statusBadge(network.state)} in <code>${network.scope}</code>, hub weight ${network.weight},
        ${network.transformationCount ?? 0} transformations. Key <code>${network.key}</code>
      </p>
      <p class="live-state" id="live-state" aria-live="polite">refreshes by itself</p>
      <div data-live id="network-live">
        <p>Tasks: ${countsLine(counts)} <a href="${base}/tasks${query({ network: key })}">list them</a></p>
        <h2>Transformations</h2>
        ${table(
          ['Name', 'Protocol', 'Tasks', 'Create and action tasks'],
          transformations.map(
            (t) =>
              html`<tr>
                <td>${t.name}</td>
                <td>${t.protocol}</td>
                <td>${countsLine(byTransformation.get(t.key) ?? {})}</td>
                <td>
                  <form method="post" action="${base}/networks/${key}/tasks" class="row-actions">
                    ${csrfField(user)}
                    <input type="hidden" name="transformation" value="${t.key}" />
                    <input
                      type="number"
                      name="count"
                      min="1"
                      max="${tasks.maxTasksPerCreate}"
                      value="1"
                      aria-label="how many tasks for ${t.name}"
                    />
                    <button type="submit">Create</button>
                  </form>
                </td>
              </tr>`,
          ),
          'no transformations',
        )}
      </div>
      <h2>Actioned tasks</h2>
      <form method="post" action="${base}/networks/${key}/cancel">
        ${csrfField(user)}
        ${table(
          ['', 'Task', 'Status', 'Priority', 'Weight'],
          actioned.map(
            (t) =>
              html`<tr>
                <td><input type="checkbox" name="task" value="${t.id}" aria-label="select ${t.id}" /></td>
                <td>
                  <a href="${base}/tasks/${t.id}"><code>${t.id}</code></a>
                </td>
                <td>${statusBadge(t.status)}</td>
                <td>${t.priority}</td>
                <td>${t.weight}</td>
              </tr>`,
          ),
          'no tasks are actioned on this hub',
        )}
        ${actioned.length ? html`<button type="submit" class="secondary">Cancel selected (take off the hub)</button>` : ''}
      </form>
      <h2>Steer</h2>
      <div class="grid">
        <form method="post" action="${base}/networks/${key}/state">
          ${csrfField(user)}
          <label
            >State
            <select name="state">
              ${networkStates.map((s) => html`<option ${s === network.state ? html`selected` : ''}>${s}</option>`)}
            </select></label
          >
          <button type="submit">Set state</button>
        </form>
        <form method="post" action="${base}/networks/${key}/weight">
          ${csrfField(user)}
          <label
            >Hub weight (0 pauses)
            <input name="weight" type="number" min="0" max="1" step="0.05" value="${network.weight}"
          /></label>
          <button type="submit">Set weight</button>
        </form>
      </div>`;
    return sendPage(reply, page(frame(request, 'networks'), `Network ${network.name}`, body));
  };
}

function postNetworkTasks(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const user = userOf(request);
    const { key } = request.params as { key: string };
    const form = formOf(request);
    const transformation = requireField(form, 'transformation');
    const count = number(field(form, 'count'), 'the count', 1, tasks.maxTasksPerCreate) ?? 1;
    const created = await auditedAction(
      ctx,
      request,
      { action: 'task.create', target: key },
      async () => {
        await networks.requireNetwork(store, user.principal, key);
        const made = await tasks.createTasks(store, user.principal, transformation, { count });
        await tasks.actionTasks(
          store,
          user.principal,
          key,
          made.map((t) => t.id),
        );
        return made;
      },
      (made) => ({ transformation, count: made.length }),
    );
    return redirectBack(reply, `${base}/networks/${key}`, `created and actioned ${created.length} tasks`);
  };
}

function postNetworkCancel(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const user = userOf(request);
    const { key } = request.params as { key: string };
    const ids = fields(formOf(request), 'task');
    if (ids.length === 0) throw new AthanorError('invalid_argument', 'tick at least one task to cancel');
    const answers = await auditedAction(
      ctx,
      request,
      { action: 'task.cancel', target: key },
      () => tasks.cancelTasks(store, user.principal, key, ids),
      (a) => ({ cancelled: a.filter((x) => x.result).length }),
    );
    return redirectBack(
      reply,
      `${base}/networks/${key}`,
      `took ${answers.filter((a) => a.result).length} tasks off the hub`,
    );
  };
}

function postNetworkState(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const user = userOf(request);
    const { key } = request.params as { key: string };
    const state = pick(requireField(formOf(request), 'state'), networkStates, 'state') as NetworkState;
    await networks.requireNetwork(store, user.principal, key);
    await auditedAction(
      ctx,
      request,
      { action: 'network.set-state', target: key },
      () => networks.setNetworkStates(store, user.principal, [key], state),
      () => ({ state }),
    );
    return redirectBack(reply, `${base}/networks/${key}`, `state set to ${state}`);
  };
}

function postNetworkWeight(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const user = userOf(request);
    const { key } = request.params as { key: string };
    const weight = number(requireField(formOf(request), 'weight'), 'the weight', 0, 1) as number;
    await auditedAction(
      ctx,
      request,
      { action: 'network.set-weight', target: key },
      () => networks.setHubWeight(store, user.principal, key, weight),
      () => ({ weight }),
    );
    return redirectBack(reply, `${base}/networks/${key}`, `hub weight set to ${weight}`);
  };
}

/** The console's pages of the networks: list, submit, one network and what can be done to it. */
export const networkPages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  app.get('/networks', showNetworks(ctx));
  app.post('/networks', postNetworks(ctx));
  app.get('/networks/:key', showNetwork(ctx));
  app.post('/networks/:key/tasks', postNetworkTasks(ctx));
  app.post('/networks/:key/cancel', postNetworkCancel(ctx));
  app.post('/networks/:key/state', postNetworkState(ctx));
  app.post('/networks/:key/weight', postNetworkWeight(ctx));
};
