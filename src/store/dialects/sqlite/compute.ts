import { sql } from 'kysely';
import type { ComputeStatements } from '../../compute-statements.js';
import { chunked } from '../../queries/chunked.js';
import { claimedRows, completionUpdate, leaseUpdate } from '../../queries/claim-sql.js';
import { insertTaskEvents } from '../../queries/events.js';
import { scopeCondition } from '../../queries/scope-filter.js';
import type { TaskRow } from '../../queries/tasks.js';

/** A list of ids as one parameter (`json_each`): the statement's text is the same for any number. */
const idList = (ids: readonly string[]) => sql`(select value from json_each(${JSON.stringify(ids)}))`;

/**
 * Leases per batch statement: six parameters each, well under SQLite's limit of 32,766, and as
 * many as the exchange route accepts in one request.
 */
const leasesPerStatement = 1000;

/**
 * SQLite's compute statements. SQLite has no data-modifying common table expressions, so each
 * operation is a few statements that must run inside `Backend.atomic` (BEGIN IMMEDIATE), which
 * also serializes claimers: no row is ever skipped as locked.
 */
export const sqliteComputeStatements: ComputeStatements = {
  async claimFromHub(db, claim) {
    const { rows } = await sql<TaskRow>`with ${claimedRows(claim, () => sql``)}
      ${leaseUpdate(claim)} returning *`.execute(db);
    if (rows.length > 0 && (claim.history ?? true)) {
      await db
        .insertInto('task_attempts')
        .values(
          rows.map((task) => ({
            task_id: task.id,
            lease_token: task.lease_token,
            attempt: task.attempts,
            scope: task.scope,
            compute_identity: claim.claimer.identifier,
            compute_service_id: claim.claimer.serviceId,
            hostname: claim.claimer.hostname,
            claimed_at: claim.now,
          })),
        )
        .execute();
    }
    return rows;
  },

  async completeLease(db, done) {
    const { rows } = await sql<{ id: string; scope: string; attempts: number }>`${completionUpdate(
      done,
    )}`.execute(db);
    const task = rows[0];
    if (!task) return false;
    await db
      .insertInto('results')
      .values({
        id: done.resultId,
        task_id: done.taskId,
        scope: task.scope,
        attempt: task.attempts,
        lease_token: done.leaseToken,
        outcome: 'ok',
        blob_sha256: done.sha256,
        size_bytes: done.sizeBytes,
        error: null,
        compute_service_id: done.serviceId,
        created_at: done.now,
        body: done.body ?? null,
      })
      .execute();
    if (done.history ?? true) {
      await db
        .updateTable('task_attempts')
        .set({ outcome: 'ok', ended_at: done.now, result_id: done.resultId, reason: null })
        .where('task_id', '=', done.taskId)
        .where('lease_token', '=', done.leaseToken)
        .where('ended_at', 'is', null)
        .execute();
    }
    if (done.events ?? true) await insertTaskEvents(db, [done.taskId], 'task.complete', done.now);
    await db.deleteFrom('hub_tasks').where('task_id', '=', done.taskId).execute();
    return true;
  },

  async completeLeases(db, holder, leases, now, history, events = true) {
    const completed = new Set<string>();
    const seen = new Set<string>();
    const firsts = leases.filter((l) => !seen.has(l.taskId) && Boolean(seen.add(l.taskId)));
    // Four statements per chunk, whatever its size: the result rows of the live leases first (the
    // lease check is their SELECT), then the tasks, the attempts and the hub entries of what landed.
    for (const chunk of chunked(firsts, leasesPerStatement)) {
      const input = sql.join(
        chunk.map(
          (l) =>
            sql`(${l.taskId}, ${l.leaseToken}, ${l.resultId}, ${l.sha256}, ${l.sizeBytes}, ${l.body ?? null})`,
        ),
      );
      const { rows } = await sql<{ id: string; task_id: string }>`
        with input(task_id, lease_token, result_id, sha256, size_bytes, body) as (values ${input})
        insert into results (id, task_id, scope, attempt, lease_token, outcome, blob_sha256, size_bytes,
          error, compute_service_id, created_at, body)
        select i.result_id, t.id, t.scope, t.attempts, i.lease_token, 'ok', i.sha256, i.size_bytes,
          null, t.lease_service_id, ${now}, i.body
        from input i join tasks t on t.id = i.task_id
        where t.status = 'running' and t.lease_token = i.lease_token and t.lease_expires_at >= ${now}
          and exists (select 1 from compute_services s
            where s.id = t.lease_service_id and s.identifier = ${holder.identifier})
          and ${scopeCondition('t.scope', holder.scopes)}
        returning id, task_id`.execute(db);
      if (rows.length === 0) continue;
      const tasks = idList(rows.map((r) => r.task_id));
      await sql`
        update tasks set status = 'complete', lease_service_id = null, lease_expires_at = null,
          updated_at = ${now}, status_changed_at = ${now}, status_reason = null, last_error = null
        where id in ${tasks}`.execute(db);
      if (history) {
        await sql`
          update task_attempts set outcome = 'ok', ended_at = ${now}, result_id = r.id, reason = null
          from results r
          where r.id in ${idList(rows.map((r) => r.id))} and task_attempts.task_id = r.task_id
            and task_attempts.lease_token = r.lease_token and task_attempts.ended_at is null`.execute(db);
      }
      if (events)
        await insertTaskEvents(
          db,
          rows.map((r) => r.task_id),
          'task.complete',
          now,
        );
      await sql`delete from hub_tasks where task_id in ${tasks}`.execute(db);
      for (const row of rows) completed.add(row.task_id);
    }
    return completed;
  },
};
