import { recordTaskEvents } from './events/record-events.js';
import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { canAccess, principalName, visibleScopes } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { TaskStatus, UserSettableStatus } from '../domain/task-state.js';
import { canTransition, terminalStatuses, transitionRefusal } from '../domain/task-state.js';
import type { Store } from '../store/open-store.js';
import { findTransformation } from '../store/queries/networks.js';
import * as q from '../store/queries/tasks.js';
import { checkWaitingTasksQuota } from './identity-quotas.js';
import { revokeOrphanedLeases } from './revoke-leases.js';
import { closeOpenAttempts } from '../store/queries/attempts.js';
import type { Page } from './networks.js';
import { notFound, pageLimit, parseQueryScope, requireNetwork } from './networks.js';
import type { ResultView, TaskView } from './views.js';
import { resultView, taskView } from './views.js';

export const maxTasksPerCreate = 1000;

export function newTaskId(): string {
  return `task-${randomBytes(16).toString('hex')}`;
}

/** A per-item answer of a bulk request: items outside the caller's scopes look exactly like missing ones. */
export interface BulkAnswer<T> {
  readonly task: string;
  readonly result: T | null;
  readonly error?: string;
}

const notFoundText = 'not found in your scopes';

export interface CreateTasksInput {
  readonly count?: number | undefined;
  readonly extends?: string | undefined;
  readonly priority?: number | undefined;
}

/** New waiting tasks of a transformation, as `createTasks` and `ensureTasks` insert them. */
export function buildTaskRows(
  principal: Principal,
  transformation: { key: string; scope: string },
  count: number,
  options: { extends?: string | undefined; priority?: number | undefined },
): q.TaskRow[] {
  const now = new Date().toISOString();
  return Array.from({ length: count }, () => ({
    id: newTaskId(),
    scope: transformation.scope,
    transformation_key: transformation.key,
    extends_task_id: options.extends ?? null,
    status: 'waiting',
    priority: options.priority ?? 10,
    attempts: 0,
    restarts: 0,
    created_at: now,
    created_by: principalName(principal),
    updated_at: now,
    lease_service_id: null,
    lease_token: 0,
    lease_expires_at: null,
    last_error: null,
    status_changed_at: now,
    status_reason: null,
    progress_fraction: null,
    progress_message: null,
    progress_at: null,
  }));
}

export async function createTasks(
  store: Store,
  principal: Principal,
  transformationKey: string,
  input: CreateTasksInput,
): Promise<TaskView[]> {
  const count = input.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > maxTasksPerCreate) {
    throw new AthanorError('validation_failed', `body/count must be between 1 and ${maxTasksPerCreate}`);
  }
  const transformation = await findTransformation(store.db, transformationKey);
  if (!transformation || !canAccess(principal, transformation.scope)) {
    throw notFound('transformation', transformationKey);
  }
  return store.transaction(async (trx) => {
    if (input.extends !== undefined) {
      const base = await q.findTask(trx, input.extends);
      if (!base || !canAccess(principal, base.scope)) throw notFound('task', input.extends);
      if (base.transformation_key !== transformationKey) {
        throw new AthanorError(
          'conflict',
          `task '${input.extends}' belongs to another transformation; a task can only extend a task of its own transformation`,
        );
      }
      if (terminalStatuses.has(base.status)) {
        throw new AthanorError(
          'conflict',
          `task '${input.extends}' is ${base.status}; it cannot be extended`,
        );
      }
    }
    await checkWaitingTasksQuota(trx, principal, count);
    const rows = buildTaskRows(principal, transformation, count, {
      extends: input.extends,
      priority: input.priority,
    });
    await q.insertTasks(trx, rows);
    return rows.map(taskView);
  });
}

export async function getTask(store: Store, principal: Principal, id: string): Promise<TaskView> {
  const row = await q.findTask(store.db, id);
  if (!row || !canAccess(principal, row.scope)) throw notFound('task', id);
  return taskView(row);
}

export async function listTasks(
  store: Store,
  principal: Principal,
  filter: Page & {
    scope?: string | undefined;
    status?: TaskStatus | undefined;
    transformation?: string | undefined;
    network?: string | undefined;
  },
): Promise<TaskView[]> {
  const scopes = visibleScopes(principal, parseQueryScope(filter.scope));
  const rows = await q.listTasks(store.db, {
    scopes,
    limit: pageLimit(filter),
    after: filter.after,
    status: filter.status,
    transformationKey: filter.transformation,
    networkKey: filter.network,
  });
  return rows.map(taskView);
}

async function visibleTasks(store: Store, principal: Principal, ids: readonly string[], db = store.db) {
  const rows = await q.findTasks(db, ids);
  for (const [id, row] of rows) if (!canAccess(principal, row.scope)) rows.delete(id);
  return rows;
}

const actionableStatuses: ReadonlySet<TaskStatus> = new Set(['waiting', 'running', 'error']);

/** Puts tasks on a network's hub with a weight; answers per task whether it was actioned. */
export async function actionTasks(
  store: Store,
  principal: Principal,
  networkKey: string,
  taskIds: readonly string[],
  weight = 0.5,
): Promise<BulkAnswer<boolean>[]> {
  await requireNetwork(store, principal, networkKey);
  let actioned = 0;
  const answers = await store.transaction(async (trx) => {
    const rows = await visibleTasks(store, principal, taskIds, trx);
    const members = await q.transformationsInNetwork(
      trx,
      networkKey,
      [...rows.values()].map((r) => r.transformation_key),
    );
    const now = new Date().toISOString();
    const answers: BulkAnswer<boolean>[] = [];
    const toAction: string[] = [];
    for (const id of taskIds) {
      const row = rows.get(id);
      if (!row) answers.push({ task: id, result: null, error: notFoundText });
      else if (!members.has(row.transformation_key)) {
        answers.push({ task: id, result: false, error: "the task's transformation is not in this network" });
      } else if (!actionableStatuses.has(row.status)) {
        answers.push({ task: id, result: false, error: `the task is ${row.status}` });
      } else {
        answers.push({ task: id, result: true });
        toAction.push(id);
      }
    }
    const entries = [...new Set(toAction)].map((id) => ({ id, priority: rows.get(id)!.priority }));
    await q.actionOnHub(trx, networkKey, entries, weight, now);
    actioned = entries.length;
    return answers;
  });
  // Claims are planned with the hub entries' statistics: a hub that just grew by much is
  // re-counted before its first claims (after the commit, so the count includes these entries).
  // A refresh that fails leaves autovacuum to do it later; the action itself has committed.
  await store.backend.refreshStatistics(store.db, 'hub_tasks', actioned).catch(() => {});
  return answers;
}

/**
 * Takes tasks off a network's hub; answers per task whether it was on it. A running task that no
 * active network's hub holds any more has its lease revoked.
 */
export async function cancelTasks(
  store: Store,
  principal: Principal,
  networkKey: string,
  taskIds: readonly string[],
): Promise<BulkAnswer<boolean>[]> {
  await requireNetwork(store, principal, networkKey);
  return store.transaction(async (trx) => {
    const rows = await visibleTasks(store, principal, taskIds, trx);
    const removed = new Set(await q.removeFromHubs(trx, [...rows.keys()], networkKey));
    await revokeOrphanedLeases(trx, [...removed], `cancelled from network ${networkKey}`);
    return taskIds.map((id) =>
      rows.has(id) ? { task: id, result: removed.has(id) } : { task: id, result: null, error: notFoundText },
    );
  });
}

/** The longest reason a user may give with a status change. */
export const maxReasonLength = 2000;

/**
 * Sets the status of many tasks (users may set waiting, invalid, deleted), with an optional
 * reason kept on each task. Invalid and deleted cascade to every task extending the task, take
 * them off every hub, and revoke the leases of those running.
 */
export async function setTaskStatuses(
  store: Store,
  principal: Principal,
  taskIds: readonly string[],
  status: UserSettableStatus,
  reason?: string,
): Promise<{ tasks: BulkAnswer<TaskStatus>[]; cascaded: string[] }> {
  if (reason !== undefined && reason.length > maxReasonLength) {
    throw new AthanorError('validation_failed', `body/reason may hold at most ${maxReasonLength} characters`);
  }
  const statusReason = reason === undefined || reason.trim() === '' ? null : reason;
  return store.transaction(async (trx) => {
    const rows = await visibleTasks(store, principal, taskIds, trx);
    const now = new Date().toISOString();
    const answers: BulkAnswer<TaskStatus>[] = [];
    const changed: string[] = [];
    for (const id of taskIds) {
      const row = rows.get(id);
      if (!row) {
        answers.push({ task: id, result: null, error: notFoundText });
      } else if (!canTransition(row.status, status, 'user')) {
        answers.push({ task: id, result: row.status, error: transitionRefusal(row.status, status) });
      } else {
        answers.push({ task: id, result: status });
        if (row.status !== status) changed.push(id);
      }
    }
    let cascaded: string[] = [];
    if (terminalStatuses.has(status) && changed.length > 0) {
      const extending = (await q.findExtendingTasks(trx, changed)).filter(
        (t) => !terminalStatuses.has(t.status),
      );
      cascaded = extending.map((t) => t.id);
      const all = [...changed, ...cascaded];
      await q.updateTasks(trx, all, {
        status,
        updated_at: now,
        lease_service_id: null,
        lease_expires_at: null,
        status_changed_at: now,
        status_reason: statusReason,
      });
      // Only running tasks have an open attempt: theirs end here, and the lease with them.
      await closeOpenAttempts(trx, all, {
        outcome: 'revoked',
        endedAt: now,
        reason: `the task was set ${status}${statusReason === null ? '' : `: ${statusReason}`}`,
      });
      if (status === 'invalid' || status === 'deleted')
        await recordTaskEvents(trx, all, [status === 'invalid' ? 'task.invalid' : 'task.deleted'], now);
      await q.removeFromHubs(trx, all, undefined);
    } else if (changed.length > 0) {
      await q.updateTasks(trx, changed, {
        status,
        updated_at: now,
        status_changed_at: now,
        status_reason: statusReason,
      });
    }
    return { tasks: answers, cascaded };
  });
}

export async function setTaskPriorities(
  store: Store,
  principal: Principal,
  taskIds: readonly string[],
  priority: number,
): Promise<BulkAnswer<number>[]> {
  if (!Number.isInteger(priority) || priority < 1) {
    throw new AthanorError(
      'validation_failed',
      'body/priority must be a whole number ≥ 1 (1 is the highest)',
    );
  }
  return store.transaction(async (trx) => {
    const rows = await visibleTasks(store, principal, taskIds, trx);
    await q.updateTasks(trx, [...rows.keys()], { priority, updated_at: new Date().toISOString() });
    await q.setHubPriority(trx, [...rows.keys()], priority);
    return taskIds.map((id) =>
      rows.has(id) ? { task: id, result: priority } : { task: id, result: null, error: notFoundText },
    );
  });
}

export async function listTaskResults(
  store: Store,
  principal: Principal,
  taskId: string,
): Promise<ResultView[]> {
  await getTask(store, principal, taskId);
  return (await q.listResults(store.db, taskId)).map(resultView);
}

export async function getResult(store: Store, principal: Principal, resultId: string): Promise<ResultView> {
  const row = await q.findResult(store.db, resultId);
  if (!row || !canAccess(principal, row.scope)) throw notFound('result', resultId);
  return resultView(row);
}

export async function listActionedTasks(
  store: Store,
  principal: Principal,
  networkKey: string,
  page: Page,
): Promise<(TaskView & { weight: number })[]> {
  await requireNetwork(store, principal, networkKey);
  const rows = await q.listActionedTasks(store.db, networkKey, pageLimit(page), page.after);
  return rows.map((r) => ({ ...taskView(r), weight: r.hub_weight }));
}
