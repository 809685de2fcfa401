import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import { preparedMarker } from '../backend.js';
import type { ClaimFilter } from '../compute-statements.js';
import type { ComputeServicesTable, Database } from '../schema.js';
import { claimableTask } from './claim-sql.js';
import { scopeCondition } from './scope-filter.js';
import type { TaskRow } from './tasks.js';
import { chunked } from './chunked.js';

export type ComputeServiceRow = Selectable<ComputeServicesTable>;

export async function insertComputeService(db: Kysely<Database>, row: ComputeServiceRow): Promise<void> {
  await db.insertInto('compute_services').values(row).execute();
}

export async function findComputeService(
  db: Kysely<Database>,
  id: string,
): Promise<ComputeServiceRow | undefined> {
  return db.selectFrom('compute_services').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function updateComputeService(
  db: Kysely<Database>,
  id: string,
  changes: Partial<Omit<ComputeServiceRow, 'id'>>,
): Promise<void> {
  await db.updateTable('compute_services').set(changes).where('id', '=', id).execute();
}

export async function countActiveServices(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('compute_services')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'active')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Hubs that have at least one claimable task for this filter, with their weights. */
export async function claimableHubs(
  db: Kysely<Database>,
  filter: ClaimFilter,
): Promise<{ network_key: string; weight: number }[]> {
  const { rows } = await sql<{ network_key: string; weight: number }>`${sql.raw(preparedMarker)}
    select h.network_key, h.weight from hubs h
    join networks n on n.key = h.network_key
    where n.state = 'active' and h.weight > 0 and ${scopeCondition('h.scope', filter.scopes)}
      and exists (
        select 1 from hub_tasks ht
        join tasks t on t.id = ht.task_id
        join transformations tf on tf.key = t.transformation_key
        where ht.network_key = h.network_key and ht.weight > 0 and t.status = 'waiting'
          and ${claimableTask(filter)}
        limit 1 offset 0 -- evaluated per hub, stopping at the first claimable task (see claimedRows)
      )`.execute(db);
  return rows;
}

/**
 * The task with its lease holder's identity when `leaseToken` is its live lease, else undefined.
 * With `lock` (inside a transaction) the row stays locked until commit, through a no-op UPDATE so
 * PostgreSQL re-checks the lease after waiting for a concurrent sweep or claim: the lease cannot
 * be taken away between this check and the transaction's writes.
 */
export async function findLiveLease(
  db: Kysely<Database>,
  params: { taskId: string; leaseToken: number; now: string; lock: boolean },
): Promise<(TaskRow & { service_identifier: string | null }) | undefined> {
  const live = sql`id = ${params.taskId} and status = 'running' and lease_token = ${params.leaseToken}
      and lease_expires_at >= ${params.now}`;
  const holder = sql`(select s.identifier from compute_services s where s.id = tasks.lease_service_id)`;
  const { rows } = await (
    params.lock
      ? sql<TaskRow & { service_identifier: string | null }>`${sql.raw(preparedMarker)}
        update tasks set lease_token = lease_token where ${live}
        returning *, ${holder} as service_identifier`
      : sql<TaskRow & { service_identifier: string | null }>`${sql.raw(preparedMarker)}
        select tasks.*, ${holder} as service_identifier from tasks where ${live}`
  ).execute(db);
  return rows[0];
}

/** A lease as its holder names it: the task and the fencing token it was claimed with. */
export interface LeaseRef {
  readonly taskId: string;
  readonly leaseToken: number;
}

/**
 * Extends the live leases of a service (only those in `held` when given); returns the tasks it
 * still holds.
 */
export async function extendServiceLeases(
  db: Kysely<Database>,
  serviceId: string,
  now: string,
  leaseExpiresAt: string,
  held?: readonly LeaseRef[],
): Promise<{ id: string; lease_token: number }[]> {
  if (held?.length === 0) return [];
  let query = db
    .updateTable('tasks')
    .set({ lease_expires_at: leaseExpiresAt })
    .where('status', '=', 'running')
    .where('lease_service_id', '=', serviceId)
    .where('lease_expires_at', '>=', now);
  if (held) query = query.where((eb) => eb.or(held.map((l) => matchesLease(eb, l))));
  return query.returning(['id', 'lease_token']).execute();
}

const matchesLease = (eb: ExpressionBuilder<Database, 'tasks'>, lease: LeaseRef) =>
  eb.and([eb('id', '=', lease.taskId), eb('lease_token', '=', lease.leaseToken)]);

/**
 * Returns tasks to `waiting`: every running task of a service, every running task of a service
 * but the leases in `except`, every running task whose lease expired, or those of `taskIds` still
 * running (re-checked under their row locks: a result committed meanwhile wins).
 */
export async function releaseLeases(
  db: Kysely<Database>,
  where:
    | { serviceId: string; except?: readonly LeaseRef[] | undefined }
    | { expiredBefore: string }
    | { taskIds: readonly string[] },
  now: string,
): Promise<string[]> {
  if ('taskIds' in where) {
    const released: string[] = [];
    for (const chunk of chunked(where.taskIds, 500))
      released.push(...(await releaseWhere(db, { chunk }, now)));
    return released;
  }
  return releaseWhere(db, where, now);
}

async function releaseWhere(
  db: Kysely<Database>,
  where:
    | { serviceId: string; except?: readonly LeaseRef[] | undefined }
    | { expiredBefore: string }
    | { chunk: readonly string[] },
  now: string,
): Promise<string[]> {
  let query = db
    .updateTable('tasks')
    .set({
      status: 'waiting',
      lease_service_id: null,
      lease_expires_at: null,
      updated_at: now,
      status_changed_at: now,
      status_reason: null,
    })
    .where('status', '=', 'running');
  if ('serviceId' in where) {
    query = query.where('lease_service_id', '=', where.serviceId);
    const except = where.except ?? [];
    if (except.length > 0) query = query.where((eb) => eb.not(eb.or(except.map((l) => matchesLease(eb, l)))));
  } else if ('chunk' in where) {
    if (where.chunk.length === 0) return [];
    query = query.where('id', 'in', where.chunk);
  } else {
    query = query.where('lease_expires_at', '<', where.expiredBefore);
  }
  return (await query.returning('id').execute()).map((r) => r.id);
}

/** The result a lease already submitted, if any (its holder may send it again after a lost answer). */
export async function findResultOfLease(db: Kysely<Database>, lease: LeaseRef) {
  return db
    .selectFrom('results')
    .leftJoin('compute_services as s', 's.id', 'results.compute_service_id')
    .select(['results.id', 'results.outcome', 'results.blob_sha256', 's.identifier as service_identifier'])
    .where('results.task_id', '=', lease.taskId)
    .where('results.lease_token', '=', lease.leaseToken)
    .executeTakeFirst();
}

/** Marks registrations whose heartbeat stopped as expired; returns their ids. */
export async function expireServices(db: Kysely<Database>, now: string): Promise<string[]> {
  const rows = await db
    .updateTable('compute_services')
    .set({ state: 'expired' })
    .where('state', '=', 'active')
    .where('expires_at', '<', now)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** Restart policies of every hub the task is actioned on, by network. */
export async function policiesForTask(
  db: Kysely<Database>,
  taskId: string,
): Promise<{ network_key: string; pattern: string | null; max_retries: number | null }[]> {
  return db
    .selectFrom('hub_tasks as ht')
    .leftJoin('restart_policies as rp', 'rp.network_key', 'ht.network_key')
    .select(['ht.network_key', 'rp.pattern', 'rp.max_retries'])
    .where('ht.task_id', '=', taskId)
    .execute();
}

export async function insertResult(
  db: Kysely<Database>,
  row: Selectable<Database['results']>,
): Promise<void> {
  await db.insertInto('results').values(row).execute();
}

/** The newest successful result of a task (handed to tasks that extend it). */
export async function latestOkResult(db: Kysely<Database>, taskId: string) {
  return db
    .selectFrom('results')
    .select(['id', 'blob_sha256'])
    .where('task_id', '=', taskId)
    .where('outcome', '=', 'ok')
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
}

/** Which of `sha256s` some result or attempt log references (a result stored inline references none). */
export async function referencedBlobs(
  db: Kysely<Database>,
  sha256s: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const chunk of chunked(sha256s, 500)) {
    const rows = await db
      .selectFrom('results')
      .select('blob_sha256')
      .distinct()
      .where('blob_sha256', 'in', chunk)
      .where('body', 'is', null)
      .execute();
    for (const row of rows) if (row.blob_sha256) found.add(row.blob_sha256);
    const logs = await db
      .selectFrom('task_attempts')
      .select('log_sha256')
      .distinct()
      .where('log_sha256', 'in', chunk)
      .execute();
    for (const row of logs) if (row.log_sha256) found.add(row.log_sha256);
  }
  return found;
}
