import type { RawBuilder } from 'kysely';
import { sql } from 'kysely';
import type { ClaimFilter, HubClaim } from '../compute-statements.js';
import { scopeCondition } from './scope-filter.js';

/** The condition a task `t` (joined to its transformation `tf`) meets when this filter may claim it. */
export function claimableTask(filter: ClaimFilter): RawBuilder<unknown> {
  const protocols = filter.protocols?.length
    ? sql`tf.protocol in (${sql.join(filter.protocols.map((p) => sql`${p}`))})`
    : sql`1 = 1`;
  const excluded = filter.excludeScopes?.length
    ? sql`not ${scopeCondition('t.scope', filter.excludeScopes)}`
    : sql`1 = 1`;
  // A task extending another becomes claimable once that task is complete.
  return sql`${scopeCondition('t.scope', filter.scopes)} and ${protocols} and ${excluded}
    and (t.extends_task_id is null or exists (
      select 1 from tasks e where e.id = t.extends_task_id and e.status = 'complete'))`;
}

/**
 * The `picked` and `locked` common table expressions of a claim, the same on both dialects but for
 * how rows another claimer holds are skipped (`skipLocked`, empty on SQLite). Read from the
 * `hub_tasks_claim` index, so the cost does not grow with the hub. Hub entries and then tasks are
 * locked, skipping those held: a task on two hubs claimed through both at once goes to one claimer.
 */
export function claimedRows(claim: HubClaim, skipLocked: (alias: string) => RawBuilder<unknown>) {
  return sql`
    picked as (
      select ht.task_id as id from hub_tasks ht
      where ht.network_key = ${claim.networkKey} and ht.weight > 0
        and exists (
          select 1 from compute_services s where s.id = ${claim.claimer.serviceId} and s.state = 'active')
        and exists (
          select 1 from hubs h join networks n on n.key = h.network_key
          where h.network_key = ${claim.networkKey} and h.weight > 0 and n.state = 'active')
        and exists (
          select 1 from tasks t
          join transformations tf on tf.key = t.transformation_key
          where t.id = ht.task_id and t.status = 'waiting' and ${claimableTask(claim)}
          -- OFFSET keeps PostgreSQL from turning this into a join it may drive from the tasks
          -- side (then sorting every waiting task) when its statistics lag a bulk submission.
          limit 1 offset 0)
      order by ht.priority asc, ht.claim_key asc
      limit ${claim.count}
      ${skipLocked('ht')}
    ),
    -- The tasks are locked the same way: a claim never waits on a task row, so it cannot deadlock
    -- with a bulk change that locks tasks first and their hub entries second.
    locked as (
      select t.id from tasks t
      where t.id in (select id from picked) and t.status = 'waiting'
      ${skipLocked('t')}
    )`;
}

/** The update that turns the `locked` tasks into leases of the claimer (its RETURNING is the dialect's). */
export function leaseUpdate(claim: HubClaim) {
  return sql`
    update tasks set
      status = 'running',
      lease_service_id = ${claim.claimer.serviceId},
      lease_token = lease_token + 1,
      lease_expires_at = ${claim.leaseExpiresAt},
      attempts = attempts + 1,
      updated_at = ${claim.now},
      status_changed_at = ${claim.now},
      status_reason = null,
      progress_fraction = null,
      progress_message = null,
      progress_at = null
    from locked
    where tasks.id = locked.id and tasks.status = 'waiting'`;
}

/** The update that completes the task of a live lease `done.leaseToken`; returns its scope and attempt. */
export function completionUpdate(done: { taskId: string; leaseToken: number; now: string }) {
  return sql`
    update tasks set status = 'complete', lease_service_id = null, lease_expires_at = null,
      updated_at = ${done.now}, status_changed_at = ${done.now}, status_reason = null, last_error = null
    where id = ${done.taskId} and status = 'running' and lease_token = ${done.leaseToken}
      and lease_expires_at >= ${done.now}
    returning id, scope, attempts`;
}
