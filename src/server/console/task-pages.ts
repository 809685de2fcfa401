import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { AthanorError } from '../../domain/errors.js';
import { sendResultBytes } from '../result-bytes.js';
import { taskStatuses } from '../../domain/task-state.js';
import * as attempts from '../../service/attempts.js';
import * as networks from '../../service/networks.js';
import * as queueViews from '../../service/queue-views.js';
import * as tasks from '../../service/tasks.js';
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
import { csrfField, notice, page, statusBadge, table, time } from './layout.js';
import type { Query } from './page-helpers.js';
import { frameOf, number, pick, queryOf, select } from './page-helpers.js';

function showTasks(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
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
  };
}

function postTasksRestart(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
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
  };
}

function postTaskStatus(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
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
  };
}

function postTaskPriority(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
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
  };
}

/** The task page's body: its facts, attempts, results and the forms that act on it. */
function taskBody(
  base: string,
  user: ReturnType<typeof userOf>,
  q: Query,
  facts: {
    readonly task: Awaited<ReturnType<typeof tasks.getTask>>;
    readonly results: Awaited<ReturnType<typeof tasks.listTaskResults>>;
    readonly placement: Awaited<ReturnType<typeof queueViews.taskPlacement>>;
    readonly transformation: Awaited<ReturnType<typeof networks.getTransformation>>;
    readonly history: Awaited<ReturnType<typeof attempts.listTaskAttempts>>;
  },
): Html {
  const { task, results, placement, transformation, history } = facts;
  return html` ${notice(q.done)}
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
              <td>${transformation.name} (${transformation.protocol}) <code>${transformation.key}</code></td>
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
}

function showTask(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
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
    const body = taskBody(base, user, q, { task, results, placement, transformation, history });
    return sendPage(reply, page(frame(request, 'tasks'), `Task ${task.id}`, body));
  };
}

function showResultDownload(ctx: ConsoleContext): RouteHandlerMethod {
  const { store } = ctx;
  return async (request, reply) => {
    const user = userOf(request);
    const { id } = request.params as { id: string };
    const result = await tasks.getResult(store, user.principal, id);
    return sendResultBytes(reply, store, ctx.objects, result, {
      headers: { 'content-disposition': `attachment; filename="${result.id}.bin"` },
    });
  };
}

/** The console's pages of the tasks: list, restart, status and priority, one task and its result download. */
export const taskPages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  app.get('/tasks', showTasks(ctx));
  app.post('/tasks/restart', postTasksRestart(ctx));
  app.post('/tasks/:id/status', postTaskStatus(ctx));
  app.post('/tasks/:id/priority', postTaskPriority(ctx));
  app.get('/tasks/:id', showTask(ctx));
  app.get('/results/:id/download', showResultDownload(ctx));
};
