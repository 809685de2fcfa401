import type { Principal } from '../auth/principal.js';
import { canAccess } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import { closeAttempt } from '../store/queries/attempts.js';
import * as q from '../store/queries/compute.js';
import { findTask, type TaskRow, updateTasks } from '../store/queries/tasks.js';
import type { ComputeTimings } from './compute-services.js';
import { defaultTimings, iso } from './compute-services.js';

export function staleLease(taskId: string): AthanorError {
  return new AthanorError(
    'stale_lease',
    `the lease on task '${taskId}' is not yours any more (expired, released or claimed again): drop the task`,
  );
}

/**
 * The task whose live lease `leaseToken` is, held by the caller; else 404 (not in the caller's
 * scopes) or 409 (stale or foreign). Given a transaction, the task stays locked until it ends.
 */
export async function requireLease(
  store: Store,
  principal: Principal,
  taskId: string,
  leaseToken: number,
  trx?: Store['db'],
): Promise<TaskRow> {
  const db = trx ?? store.db;
  const leased = await q.findLiveLease(db, {
    taskId,
    leaseToken,
    now: iso(Date.now()),
    lock: trx !== undefined,
  });
  if (leased && canAccess(principal, leased.scope) && leased.service_identifier === principal.identifier) {
    const { service_identifier: _, ...task } = leased;
    return task;
  }
  const task = await findTask(db, taskId);
  if (!task || !canAccess(principal, task.scope))
    throw new AthanorError('not_found', `no task '${taskId}' in your scopes`);
  throw staleLease(taskId);
}

/** Extends one lease; a stale or foreign token is refused (409) and changes nothing. */
export async function extendLease(
  store: Store,
  principal: Principal,
  taskId: string,
  leaseToken: number,
  timings: ComputeTimings = defaultTimings,
) {
  return store.transaction(async (trx) => {
    await requireLease(store, principal, taskId, leaseToken, trx);
    const leaseExpiresAt = iso(Date.now() + timings.leaseTtlMs);
    await updateTasks(trx, [taskId], { lease_expires_at: leaseExpiresAt });
    return { task: taskId, leaseToken, leaseExpiresAt };
  });
}

/** Gives a task back without penalty: it returns to waiting and its attempt is not counted. */
export async function releaseLease(store: Store, principal: Principal, taskId: string, leaseToken: number) {
  return store.transaction(async (trx) => {
    const task = await requireLease(store, principal, taskId, leaseToken, trx);
    const now = iso(Date.now());
    await updateTasks(trx, [taskId], {
      status: 'waiting',
      lease_service_id: null,
      lease_expires_at: null,
      attempts: Math.max(0, task.attempts - 1),
      updated_at: now,
      status_changed_at: now,
      status_reason: null,
    });
    await closeAttempt(trx, taskId, leaseToken, { outcome: 'released', endedAt: now });
    return { task: taskId, status: 'waiting' as const };
  });
}
