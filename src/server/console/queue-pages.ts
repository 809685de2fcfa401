import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Value } from 'typebox/value';
import { AthanorError } from '../../domain/errors.js';
import { sendResultBytes } from '../result-bytes.js';
import { taskStatuses } from '../../domain/task-state.js';
import type { TaskStatus } from '../../domain/task-state.js';
import { getMaintenance } from '../../ops/maintenance.js';
import * as attempts from '../../service/attempts.js';
import * as networks from '../../service/networks.js';
import * as queueViews from '../../service/queue-views.js';
import * as tasks from '../../service/tasks.js';
import type { NetworkState } from '../../store/schema.js';
import { getMigrationStatus } from '../../store/migrator.js';
import { appVersion } from '../../version.js';
import { NetworkSubmission } from '../schemas.js';
import { backupSummary } from './operator-pages.js';
import { completionsChart } from './chart.js';
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
import type { Html } from './html.js';
import { html } from './html.js';
import { csrfField, notice, page, query, statusBadge, table, time } from './layout.js';
import { networkStates } from '../../domain/network-state.js';

type Query = Readonly<Record<string, string | undefined>>;

function queryOf(request: FastifyRequest): Query {
  return (request.query ?? {}) as Query;
}

function pick<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  label: string,
): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new AthanorError('invalid_argument', `${label} '${value}' is not one of: ${allowed.join(', ')}`);
  }
  return value as T;
}

function number(text: string | undefined, label: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new AthanorError(
      'invalid_argument',
      `${label} must be a number from ${min} to ${max}, got '${text}'`,
    );
  }
  return value;
}

function countsLine(counts: Partial<Record<TaskStatus, number>>): Html {
  const shown = taskStatuses.filter((s) => (counts[s] ?? 0) > 0);
  if (shown.length === 0) return html`<span class="empty">no tasks</span>`;
  return html`${shown.map((s) => html`${statusBadge(s)} <span data-count="${s}">${counts[s]}</span> `)}`;
}

function select(name: string, label: string, options: readonly string[], current: string | undefined): Html {
  return html`<label
    >${label}
    <select name="${name}">
      <option value="">any</option>
      ${options.map((o) => html`<option value="${o}" ${o === current ? html`selected` : ''}>${o}</option>`)}
    </select></label
  >`;
}

export function queuePages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { store, base } = ctx;
  const frame = (request: FastifyRequest, section: string) => ({ base, user: userOf(request), section });

  app.get('/', async (request, reply) => {
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
  });

  app.get('/networks', async (request, reply) => {
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
  });

  app.post('/networks', async (request, reply) => {
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
  });

  app.get('/networks/:key', async (request, reply) => {
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
  });

  app.post('/networks/:key/tasks', async (request, reply) => {
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
  });

  app.post('/networks/:key/cancel', async (request, reply) => {
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
  });

  app.post('/networks/:key/state', async (request, reply) => {
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
  });

  app.post('/networks/:key/weight', async (request, reply) => {
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
  });

  app.get('/tasks', async (request, reply) => {
    const user = userOf(request);
    const q = queryOf(request);
    const status = pick(q.status, taskStatuses, 'status');
    const list = await tasks.listTasks(store, user.principal, {
      scope: q.scope || undefined,
      status,
      network: q.network || undefined,
      limit: 200,
    });
    const errored = list.filter((t) => t.status === 'error');
    const body = html` ${notice(q.done)}
      <form method="get" class="filters" role="search">
        ${select('status', 'Status', taskStatuses, status)}
        <label>Network key <input name="network" value="${q.network ?? ''}" /></label>
        <label>Scope <input name="scope" value="${q.scope ?? ''}" placeholder="org-*-*" /></label>
        <button type="submit">Filter</button>
      </form>
      <p class="live-state" id="live-state" aria-live="polite">refreshes by itself</p>
      <form method="post" action="${base}/tasks/restart">
        ${csrfField(user)}
        <div data-live id="tasks-live">
          ${table(
            ['', 'Task', 'Status', 'Scope', 'Priority', 'Attempts', 'Error', 'Updated'],
            list.map(
              (t) =>
                html`<tr>
                  <td>
                    ${t.status === 'error' ? html`<input type="checkbox" name="task" value="${t.id}" aria-label="select ${t.id}" />` : ''}
                  </td>
                  <td>
                    <a href="${base}/tasks/${t.id}"><code>${t.id}</code></a>
                  </td>
                  <td>${statusBadge(t.status)}</td>
                  <td>${t.scope}</td>
                  <td>${t.priority}</td>
                  <td>${t.attempts}</td>
                  <td>${t.lastError ? t.lastError.slice(0, 80) : ''}</td>
                  <td>${time(t.updatedAt)}</td>
                </tr>`,
            ),
            'no tasks match',
          )}
        </div>
        ${errored.length ? html`<button type="submit">Restart selected errored tasks</button>` : ''}
      </form>`;
    return sendPage(reply, page(frame(request, 'tasks'), 'Tasks', body));
  });

  app.post('/tasks/restart', async (request, reply) => {
    const user = userOf(request);
    const form = formOf(request);
    const ids = fields(form, 'task');
    if (ids.length === 0)
      throw new AthanorError('invalid_argument', 'tick at least one errored task to restart');
    const outcome = await auditedAction(
      ctx,
      request,
      { action: 'task.restart', target: ids.length === 1 ? ids[0] : `${ids.length} tasks` },
      async () => {
        const outcome = await tasks.setTaskStatuses(store, user.principal, ids, 'waiting');
        // A failure left its hubs; a restart puts it back on the hubs of the networks holding it.
        const byNetwork = new Map<string, string[]>();
        for (const answer of outcome.tasks) {
          if (answer.result !== 'waiting' || answer.error) continue;
          const placement = await queueViews.taskPlacement(store, user.principal, answer.task);
          for (const network of placement.networks)
            byNetwork.set(network, [...(byNetwork.get(network) ?? []), answer.task]);
        }
        for (const [network, taskIds] of byNetwork)
          await tasks.actionTasks(store, user.principal, network, taskIds);
        return outcome;
      },
      (o) => ({ restarted: o.tasks.filter((a) => a.result === 'waiting' && !a.error).length }),
    );
    const refused = outcome.tasks.filter((a) => a.error);
    const back =
      field(form, 'back') === 'task' && ids.length === 1 ? `${base}/tasks/${ids[0]}` : `${base}/tasks`;
    return redirectBack(
      reply,
      back,
      refused.length
        ? `restarted ${ids.length - refused.length}; not restarted: ${refused.map((a) => `${a.task} (${a.error})`).join(', ')}`
        : `restarted ${ids.length} task${ids.length === 1 ? '' : 's'}: back to waiting`,
    );
  });

  app.post('/tasks/:id/status', async (request, reply) => {
    const user = userOf(request);
    const { id } = request.params as { id: string };
    const status = pick(requireField(formOf(request), 'status'), ['invalid', 'deleted'] as const, 'status');
    if (!status) throw new AthanorError('invalid_argument', 'choose a status');
    const outcome = await auditedAction(
      ctx,
      request,
      { action: 'task.set-status', target: id },
      () => tasks.setTaskStatuses(store, user.principal, [id], status),
      () => ({ status }),
    );
    const answer = outcome.tasks[0];
    if (answer?.result === null) throw new AthanorError('not_found', `no task '${id}' in your scopes`);
    return redirectBack(
      reply,
      `${base}/tasks/${id}`,
      answer?.error ? `not changed: ${answer.error}` : `marked ${status}`,
    );
  });

  app.post('/tasks/:id/priority', async (request, reply) => {
    const user = userOf(request);
    const { id } = request.params as { id: string };
    const priority = number(
      requireField(formOf(request), 'priority'),
      'the priority',
      1,
      1_000_000,
    ) as number;
    if (!Number.isInteger(priority))
      throw new AthanorError('invalid_argument', 'the priority must be a whole number');
    const answers = await auditedAction(
      ctx,
      request,
      { action: 'task.set-priority', target: id },
      () => tasks.setTaskPriorities(store, user.principal, [id], priority),
      () => ({ priority }),
    );
    if (answers[0]?.result === null) throw new AthanorError('not_found', `no task '${id}' in your scopes`);
    return redirectBack(reply, `${base}/tasks/${id}`, `priority set to ${priority}`);
  });

  app.get('/tasks/:id', async (request, reply) => {
    const user = userOf(request);
    const { id } = request.params as { id: string };
    const q = queryOf(request);
    const task = await tasks.getTask(store, user.principal, id);
    const [results, placement, transformation, history] = await Promise.all([
      tasks.listTaskResults(store, user.principal, id),
      queueViews.taskPlacement(store, user.principal, id),
      networks.getTransformation(store, user.principal, task.transformation),
      attempts.listTaskAttempts(store, user.principal, id),
    ]);
    const body = html` ${notice(q.done)}
      <p class="live-state" id="live-state" aria-live="polite">refreshes by itself</p>
      <div data-live id="task-live">
        <div class="overflow-auto">
          <table>
            <tbody>
              <tr>
                <th scope="row">Status</th>
                <td>${statusBadge(task.status)}</td>
              </tr>
              <tr>
                <th scope="row">Transformation</th>
                <td>
                  ${transformation.name} (${transformation.protocol}) <code>${transformation.key}</code>
                </td>
              </tr>
              <tr>
                <th scope="row">Scope</th>
                <td>${task.scope}</td>
              </tr>
              <tr>
                <th scope="row">Networks</th>
                <td>
                  ${placement.networks.map((n) => html`<a href="${base}/networks/${n}"><code>${n.slice(0, 16)}…</code></a> `)}
                </td>
              </tr>
              <tr>
                <th scope="row">On hubs</th>
                <td>
                  ${placement.hubs.length ? placement.hubs.map((h) => html`<code>${h.network.slice(0, 16)}…</code> weight ${h.weight} `) : 'none'}
                </td>
              </tr>
              <tr>
                <th scope="row">Priority</th>
                <td>${task.priority}</td>
              </tr>
              <tr>
                <th scope="row">Claims / restarts</th>
                <td>${task.attempts} / ${task.restarts}</td>
              </tr>
              <tr>
                <th scope="row">Lease holder</th>
                <td>
                  ${placement.lease ? html`${placement.lease.name ?? ''} <code>${placement.lease.service}</code>, lease ends ${time(placement.lease.expiresAt)}` : 'none'}
                </td>
              </tr>
              <tr>
                <th scope="row">Extends</th>
                <td>
                  ${task.extends ? html`<a href="${base}/tasks/${task.extends}"><code>${task.extends}</code></a>` : 'nothing'}
                </td>
              </tr>
              <tr>
                <th scope="row">Created</th>
                <td>${time(task.createdAt)} by ${task.createdBy}</td>
              </tr>
              <tr>
                <th scope="row">Updated</th>
                <td>${time(task.updatedAt)}</td>
              </tr>
            </tbody>
          </table>
        </div>
        ${
          task.lastError
            ? html`<h2>Error</h2>
                <pre class="error-text">${task.lastError}</pre>`
            : ''
        }
        <h2>Results</h2>
        ${table(
          ['Attempt', 'Outcome', 'Size', 'Compute service', 'When', ''],
          results.map(
            (r) =>
              html`<tr>
                <td>${r.attempt}</td>
                <td>${statusBadge(r.outcome)}</td>
                <td>${r.sizeBytes ?? '-'}</td>
                <td><code>${r.computeService ?? '-'}</code></td>
                <td>${time(r.createdAt)}</td>
                <td>
                  ${
                    r.sha256
                      ? html`<a href="${base}/results/${r.id}/download" download>Download</a>`
                      : r.error
                        ? html`<details>
                            <summary>error</summary>
                            <pre class="error-text">${r.error}</pre>
                          </details>`
                        : ''
                  }
                </td>
              </tr>`,
          ),
          'no results yet',
        )}
        <h2 id="attempts">Attempts</h2>
        ${table(
          ['Attempt', 'Outcome', 'Compute', 'Host', 'Claimed', 'Ended', 'Why'],
          history.map(
            (a) =>
              html`<tr>
                <td>${a.attempt}</td>
                <td>${a.outcome === null ? statusBadge('running') : statusBadge(a.outcome)}</td>
                <td><code>${a.computeIdentity}</code></td>
                <td>${a.hostname ?? '-'}</td>
                <td>${time(a.claimedAt)}</td>
                <td>${a.endedAt === null ? '-' : time(a.endedAt)}</td>
                <td>${a.reason ?? ''}</td>
              </tr>`,
          ),
          'not claimed yet',
        )}
      </div>
      <h2>Steer</h2>
      <div class="grid">
        ${
          task.status === 'error'
            ? html`<form method="post" action="${base}/tasks/restart">
                ${csrfField(user)}<input type="hidden" name="task" value="${task.id}" /><input
                  type="hidden"
                  name="back"
                  value="task"
                /><button type="submit">Restart (back to waiting)</button>
              </form>`
            : ''
        }
        <form method="post" action="${base}/tasks/${task.id}/priority">
          ${csrfField(user)}
          <label
            >Priority (1 is highest) <input name="priority" type="number" min="1" value="${task.priority}"
          /></label>
          <button type="submit">Set priority</button>
        </form>
        <form
          method="post"
          action="${base}/tasks/${task.id}/status"
          data-confirm="Cancel this task for good? Tasks extending it are cancelled too."
        >
          ${csrfField(user)}
          <label
            >Cancel for good
            <select name="status">
              <option value="deleted">deleted</option>
              <option value="invalid">invalid</option>
            </select></label
          >
          <button type="submit" class="secondary">Cancel task</button>
        </form>
      </div>`;
    return sendPage(reply, page(frame(request, 'tasks'), `Task ${task.id}`, body));
  });

  app.get('/results/:id/download', async (request, reply) => {
    const user = userOf(request);
    const { id } = request.params as { id: string };
    const result = await tasks.getResult(store, user.principal, id);
    return sendResultBytes(reply, store, ctx.objects, result, {
      headers: { 'content-disposition': `attachment; filename="${result.id}.bin"` },
    });
  });

  app.get('/compute', async (request, reply) => {
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
  });
}
