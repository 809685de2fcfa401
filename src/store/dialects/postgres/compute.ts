import { taskEventsCte } from '../../queries/events.js';
import { sql } from 'kysely';
import { preparedMarker } from '../../backend.js';
import type { BatchedLease, ComputeStatements } from '../../compute-statements.js';
import { chunked } from '../../queries/chunked.js';
import { claimedRows, completionUpdate, leaseUpdate } from '../../queries/claim-sql.js';
import type { TaskRow } from '../../queries/tasks.js';

const skipLocked = (alias: string) => sql.raw(`for update of ${alias} skip locked`);

/**
 * PostgreSQL's compute statements: each is one statement (data-modifying common table
 * expressions), so each is atomic by itself and none needs a transaction of its own.
 */
export const postgresComputeStatements: ComputeStatements = {
  async claimFromHub(db, claim) {
    const picked = claimedRows(claim, skipLocked);
    const update = sql`${leaseUpdate(claim)} returning tasks.*`;
    if (claim.history === false) {
      const { rows } = await sql<TaskRow>`${sql.raw(preparedMarker)}
        with ${picked}, claimed as (${update}) select * from claimed`.execute(db);
      return rows;
    }
    const { claimer } = claim;
    // The claimed tasks' attempts open in the same statement.
    const { rows } = await sql<TaskRow>`${sql.raw(preparedMarker)}
      with ${picked}, claimed as (${update}),
      opened as (
        insert into task_attempts
          (task_id, lease_token, attempt, scope, compute_identity, compute_service_id, hostname, claimed_at)
        select id, lease_token, attempts, scope, cast(${claimer.identifier} as text),
          cast(${claimer.serviceId} as text), cast(${claimer.hostname} as text), cast(${claim.now} as text)
        from claimed)
      select * from claimed`.execute(db);
    return rows;
  },

  async completeLease(db, done) {
    // The task update takes the row lock and re-checks the lease; the other writes depend on its row.
    const { rows } = await sql<{ id: string }>`${sql.raw(preparedMarker)}
      with done as (${completionUpdate(done)}),
      result as (
        insert into results (id, task_id, scope, attempt, lease_token, outcome, blob_sha256, size_bytes,
          compute_service_id, created_at, body)
        select cast(${done.resultId} as text), id, scope, attempts, cast(${done.leaseToken} as integer), 'ok',
          cast(${done.sha256} as text), cast(${done.sizeBytes} as integer),
          cast(${done.serviceId} as text), cast(${done.now} as text), cast(${done.body ?? null} as bytea)
        from done),
      attempt as (
        update task_attempts set outcome = 'ok', ended_at = ${done.now}, result_id = ${done.resultId},
          reason = null
        where task_id = ${done.taskId} and lease_token = ${done.leaseToken} and ended_at is null
          and exists (select 1 from done) and ${done.history ?? true}),
      events as (${taskEventsCte('done', 'task.complete', done.now, done.events ?? true)}),
      hubs as (delete from hub_tasks where task_id in (select id from done))
      select id from done`.execute(db);
    return rows.length > 0;
  },

  async completeLeases(db, holder, leases, now, history, events = true) {
    const completed = new Set<string>();
    const seen = new Set<string>();
    const firsts = leases.filter((l) => !seen.has(l.taskId) && Boolean(seen.add(l.taskId)));
    // The scopes as fixed-shape parameters (exact scopes and prefixes), so the text stays one
    // prepared statement.
    const exact: string[] = [];
    const prefixes: string[] = [];
    for (const scope of holder.scopes) {
      if (scope.org === '*') prefixes.push('');
      else if (scope.campaign === '*') prefixes.push(`${scope.org}-`);
      else if (scope.project === '*') prefixes.push(`${scope.org}-${scope.campaign}-`);
      else exact.push(`${scope.org}-${scope.campaign}-${scope.project}`);
    }
    // The live tasks are locked in id order (a fixed order, so two such statements cannot
    // deadlock), then completed with their results, attempts and hub entries.
    for (const chunk of chunked(firsts, 1000)) {
      const column = <T>(pick: (lease: BatchedLease) => T) => chunk.map(pick);
      const { rows } = await sql<{ id: string }>`${sql.raw(preparedMarker)}
        with input as (
          select * from unnest(
            cast(${column((l) => l.taskId)} as text[]), cast(${column((l) => l.leaseToken)} as integer[]),
            cast(${column((l) => l.resultId)} as text[]), cast(${column((l) => l.sha256)} as text[]),
            cast(${column((l) => l.sizeBytes)} as integer[]), cast(${column((l) => l.body ?? null)} as bytea[])
          ) as i(task_id, lease_token, result_id, sha256, size_bytes, body)),
        locked as (
          select t.id, i.lease_token, i.result_id, i.sha256, i.size_bytes, i.body,
            t.lease_service_id as service_id
          from tasks t join input i on i.task_id = t.id
          where t.status = 'running' and t.lease_token = i.lease_token and t.lease_expires_at >= ${now}
            and exists (select 1 from compute_services s
              where s.id = t.lease_service_id and s.identifier = ${holder.identifier})
            and (t.scope = any(cast(${exact} as text[]))
              or exists (select 1 from unnest(cast(${prefixes} as text[])) p where starts_with(t.scope, p)))
          order by t.id
          for update of t),
        done as (
          update tasks set status = 'complete', lease_service_id = null, lease_expires_at = null,
            updated_at = ${now}, status_changed_at = ${now}, status_reason = null, last_error = null
          from locked
          where tasks.id = locked.id and tasks.status = 'running' and tasks.lease_token = locked.lease_token
          returning tasks.id, tasks.scope, tasks.attempts, locked.lease_token, locked.result_id,
            locked.sha256, locked.size_bytes, locked.body, locked.service_id),
        result as (
          insert into results (id, task_id, scope, attempt, lease_token, outcome, blob_sha256, size_bytes,
            compute_service_id, created_at, body)
          select result_id, id, scope, attempts, lease_token, 'ok', sha256, size_bytes, service_id,
            cast(${now} as text), body
          from done),
        attempt as (
          update task_attempts a set outcome = 'ok', ended_at = ${now}, result_id = done.result_id,
            reason = null
          from done
          where a.task_id = done.id and a.lease_token = done.lease_token and a.ended_at is null
            and ${history}),
        events as (${taskEventsCte('done', 'task.complete', now, events)}),
        hubs as (delete from hub_tasks where task_id in (select id from done))
        select id from done`.execute(db);
      for (const row of rows) completed.add(row.id);
    }
    return completed;
  },
};
