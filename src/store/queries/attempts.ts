import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Scope } from '../../domain/scope.js';
import type { AttemptOutcome, Database, TaskAttemptsTable } from '../schema.js';
import { chunked } from './chunked.js';
import { scopeIn } from './scope-filter.js';

export type AttemptRow = Selectable<TaskAttemptsTable>;

export interface AttemptEnd {
  readonly outcome: AttemptOutcome;
  readonly endedAt: string;
  readonly resultId?: string | undefined;
  readonly reason?: string | null | undefined;
}

/** Closes the open attempt of one lease; a closed attempt is never changed. */
export async function closeAttempt(
  db: Kysely<Database>,
  taskId: string,
  leaseToken: number,
  end: AttemptEnd,
): Promise<void> {
  await db
    .updateTable('task_attempts')
    .set({
      outcome: end.outcome,
      ended_at: end.endedAt,
      result_id: end.resultId ?? null,
      reason: end.reason ?? null,
    })
    .where('task_id', '=', taskId)
    .where('lease_token', '=', leaseToken)
    .where('ended_at', 'is', null)
    .execute();
}

/** Closes whatever attempt of these tasks is still open (a task has at most one). */
export async function closeOpenAttempts(
  db: Kysely<Database>,
  taskIds: readonly string[],
  end: AttemptEnd,
): Promise<void> {
  for (const chunk of chunked(taskIds, 500)) {
    await db
      .updateTable('task_attempts')
      .set({ outcome: end.outcome, ended_at: end.endedAt, reason: end.reason ?? null })
      .where('task_id', 'in', chunk)
      .where('ended_at', 'is', null)
      .execute();
  }
}

/** A task's attempts, oldest first. */
export async function listAttempts(db: Kysely<Database>, taskId: string): Promise<AttemptRow[]> {
  return db
    .selectFrom('task_attempts')
    .selectAll()
    .where('task_id', '=', taskId)
    .orderBy('lease_token')
    .execute();
}

/** The attempts of many tasks, oldest first per task. */
export async function attemptsOfTasks(
  db: Kysely<Database>,
  taskIds: readonly string[],
): Promise<Map<string, AttemptRow[]>> {
  const found = new Map<string, AttemptRow[]>();
  for (const chunk of chunked(taskIds, 500)) {
    const rows = await db
      .selectFrom('task_attempts')
      .selectAll()
      .where('task_id', 'in', chunk)
      .orderBy('task_id')
      .orderBy('lease_token')
      .execute();
    for (const row of rows) {
      const list = found.get(row.task_id);
      if (list) list.push(row);
      else found.set(row.task_id, [row]);
    }
  }
  return found;
}

/**
 * Of `taskIds`, the running tasks that no hub of an active network holds any more: nobody is
 * waiting for their result, so their leases are revoked.
 */
export async function orphanedRunningTasks(
  db: Kysely<Database>,
  taskIds: readonly string[],
): Promise<string[]> {
  const found: string[] = [];
  for (const chunk of chunked([...new Set(taskIds)], 500)) {
    const { rows } = await sql<{ id: string }>`
      select t.id from tasks t
      where t.id in (${sql.join(chunk.map((id) => sql`${id}`))}) and t.status = 'running'
        and not exists (
          select 1 from hub_tasks ht join networks n on n.key = ht.network_key
          where ht.task_id = t.id and n.state = 'active')`.execute(db);
    found.push(...rows.map((r) => r.id));
  }
  return found;
}

/** Running tasks actioned on a network's hub. */
export async function runningTasksOfNetwork(db: Kysely<Database>, networkKey: string): Promise<string[]> {
  const rows = await db
    .selectFrom('hub_tasks as ht')
    .innerJoin('tasks as t', 't.id', 'ht.task_id')
    .select('t.id')
    .where('ht.network_key', '=', networkKey)
    .where('t.status', '=', 'running')
    .execute();
  return rows.map((r) => r.id);
}

export interface FailureRow extends AttemptRow {
  readonly blob_sha256: string | null;
  readonly error: string | null;
}

/**
 * Failed attempts of a network's tasks (or of tasks in `scopes`), in (task, lease token) order,
 * after the cursor, with their result's blob and stored error head.
 */
export async function listFailures(
  db: Kysely<Database>,
  filter: {
    networkKey?: string | undefined;
    scopes?: readonly Scope[] | undefined;
    limit: number;
    after?: { taskId: string; leaseToken: number } | undefined;
  },
): Promise<FailureRow[]> {
  let query = db
    .selectFrom('task_attempts as a')
    .leftJoin('results as r', 'r.id', 'a.result_id')
    .selectAll('a')
    .select(['r.blob_sha256', 'r.error'])
    .where('a.outcome', '=', 'failed')
    .orderBy('a.task_id')
    .orderBy('a.lease_token')
    .limit(filter.limit);
  if (filter.scopes) {
    const scopes = filter.scopes;
    query = query.where((eb) => scopeIn(eb, 'a.scope', scopes));
  }
  if (filter.networkKey) {
    const networkKey = filter.networkKey;
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom('tasks as t')
          .innerJoin('network_transformations as nt', 'nt.transformation_key', 't.transformation_key')
          .select('t.id')
          .whereRef('t.id', '=', 'a.task_id')
          .where('nt.network_key', '=', networkKey),
      ),
    );
  }
  if (filter.after) {
    const { taskId, leaseToken } = filter.after;
    query = query.where((eb) =>
      eb.or([
        eb('a.task_id', '>', taskId),
        eb.and([eb('a.task_id', '=', taskId), eb('a.lease_token', '>', leaseToken)]),
      ]),
    );
  }
  return query.execute();
}
