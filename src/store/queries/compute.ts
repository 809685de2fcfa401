import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Scope } from '../../domain/scope.js';
import type { Backend } from '../backend.js';
import { preparedMarker } from '../backend.js';
import type { ComputeServicesTable, Database } from '../schema.js';
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

export interface ClaimFilter {
  readonly scopes: readonly Scope[];
  readonly protocols?: readonly string[] | undefined;
  /** Tasks in these scopes are never claimed, even where `scopes` covers them. */
  readonly excludeScopes?: readonly Scope[] | undefined;
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
        limit 1 offset 0 -- evaluated per hub, stopping at the first claimable task (see claimFromHub)
      )`.execute(db);
  return rows;
}

function claimableTask(filter: ClaimFilter) {
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

/** Who claims: the service (checked active inside the claim) and what its attempts record. */
export interface Claimer {
  readonly serviceId: string;
  readonly identifier: string;
  readonly hostname: string | null;
}

/**
 * Claims up to `count` tasks of one hub in a single statement: highest priority first, then in
 * the entries' weighted random claim-key order, read from the `hub_tasks_claim` index so the cost
 * does not grow with the hub. Nothing is claimed unless the service is still active and the hub's
 * network active with a positive weight (a hub list read earlier may be stale). On PostgreSQL rows
 * another claimer holds are skipped and the claimed tasks' attempts open in the same statement; on
 * SQLite the surrounding BEGIN IMMEDIATE serializes claimers and the attempts are one multi-row
 * insert in that transaction. Hub entries and then tasks are locked, skipping those held: a task
 * on two hubs claimed through both at once goes to one claimer only.
 */
export async function claimFromHub(
  db: Kysely<Database>,
  backend: Backend,
  params: ClaimFilter & {
    networkKey: string;
    claimer: Claimer;
    count: number;
    now: string;
    leaseExpiresAt: string;
    /** Open an attempt per claimed task; false only for the history benchmark. */
    history?: boolean | undefined;
  },
): Promise<TaskRow[]> {
  const { claimer } = params;
  const history = params.history ?? true;
  const claim = sql`
    picked as (
      select ht.task_id as id from hub_tasks ht
      where ht.network_key = ${params.networkKey} and ht.weight > 0
        and exists (
          select 1 from compute_services s where s.id = ${claimer.serviceId} and s.state = 'active')
        and exists (
          select 1 from hubs h join networks n on n.key = h.network_key
          where h.network_key = ${params.networkKey} and h.weight > 0 and n.state = 'active')
        and exists (
          select 1 from tasks t
          join transformations tf on tf.key = t.transformation_key
          where t.id = ht.task_id and t.status = 'waiting' and ${claimableTask(params)}
          -- OFFSET keeps PostgreSQL from turning this into a join it may drive from the tasks
          -- side (then sorting every waiting task) when its statistics lag a bulk submission.
          limit 1 offset 0)
      order by ht.priority asc, ht.claim_key asc
      limit ${params.count}
      ${backend.skipLocked('ht')}
    ),
    -- The tasks are locked the same way: a claim never waits on a task row, so it cannot deadlock
    -- with a bulk change that locks tasks first and their hub entries second.
    locked as (
      select t.id from tasks t
      where t.id in (select id from picked) and t.status = 'waiting'
      ${backend.skipLocked('t')}
    )`;
  const update = sql`
    update tasks set
      status = 'running',
      lease_service_id = ${claimer.serviceId},
      lease_token = lease_token + 1,
      lease_expires_at = ${params.leaseExpiresAt},
      attempts = attempts + 1,
      updated_at = ${params.now},
      status_changed_at = ${params.now},
      status_reason = null,
      progress_fraction = null,
      progress_message = null,
      progress_at = null
    from locked
    where tasks.id = locked.id and tasks.status = 'waiting'
    returning ${backend.name === 'postgres' ? sql`tasks.*` : sql`*`}`;
  if (backend.name === 'postgres' && !history) {
    const { rows } = await sql<TaskRow>`${sql.raw(preparedMarker)}
      with ${claim}, claimed as (${update}) select * from claimed`.execute(db);
    return rows;
  }
  if (backend.name === 'postgres') {
    const { rows } = await sql<TaskRow>`${sql.raw(preparedMarker)}
      with ${claim}, claimed as (${update}),
      opened as (
        insert into task_attempts
          (task_id, lease_token, attempt, scope, compute_identity, compute_service_id, hostname, claimed_at)
        select id, lease_token, attempts, scope, cast(${claimer.identifier} as text),
          cast(${claimer.serviceId} as text), cast(${claimer.hostname} as text), cast(${params.now} as text)
        from claimed)
      select * from claimed`.execute(db);
    return rows;
  }
  const { rows } = await sql<TaskRow>`with ${claim} ${update}`.execute(db);
  if (rows.length > 0 && history) {
    await db
      .insertInto('task_attempts')
      .values(
        rows.map((task) => ({
          task_id: task.id,
          lease_token: task.lease_token,
          attempt: task.attempts,
          scope: task.scope,
          compute_identity: claimer.identifier,
          compute_service_id: claimer.serviceId,
          hostname: claimer.hostname,
          claimed_at: params.now,
        })),
      )
      .execute();
  }
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

/** A successful result recorded together with the completion of the lease it ends. */
export interface CompletedLease {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly resultId: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  /** The result's bytes when they are stored in its row; absent or null when they are a blob. */
  readonly body?: Buffer | null | undefined;
  /** The service the lease was claimed by (read with the lease before the upload). */
  readonly serviceId: string | null;
  readonly now: string;
  /** Close the lease's attempt; false only for the history benchmark. */
  readonly history?: boolean | undefined;
}

/**
 * Completes a task whose live lease is `leaseToken`: the task becomes `complete`, the result row
 * and the attempt's end are written and the task leaves its hubs. On PostgreSQL that is one
 * statement (the task update takes the row lock and re-checks the lease; the other writes depend on
 * its row); on SQLite it is four inside the caller's transaction. Answers false, writing nothing,
 * when the lease is no longer live.
 */
export async function completeLease(
  db: Kysely<Database>,
  backend: Backend,
  done: CompletedLease,
): Promise<boolean> {
  const live = sql`id = ${done.taskId} and status = 'running' and lease_token = ${done.leaseToken}
    and lease_expires_at >= ${done.now}`;
  const complete = sql`
    update tasks set status = 'complete', lease_service_id = null, lease_expires_at = null,
      updated_at = ${done.now}, status_changed_at = ${done.now}, status_reason = null, last_error = null
    where ${live}
    returning id, scope, attempts`;
  if (backend.name === 'postgres') {
    const { rows } = await sql<{ id: string }>`${sql.raw(preparedMarker)}
      with done as (${complete}),
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
      hubs as (delete from hub_tasks where task_id in (select id from done))
      select id from done`.execute(db);
    return rows.length > 0;
  }
  const { rows } = await sql<{ id: string; scope: string; attempts: number }>`${complete}`.execute(db);
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
  await db.deleteFrom('hub_tasks').where('task_id', '=', done.taskId).execute();
  return true;
}

/**
 * Whose leases a batch of results may complete: only leases held by a service that `identifier`
 * registered, on tasks in one of `scopes`.
 */
export interface LeaseHolder {
  readonly identifier: string;
  readonly scopes: readonly Scope[];
}

/**
 * `completeLease` for many leases at once, each checked by the write itself: the lease is live
 * (running, same token, unexpired) and held by `holder`. Answers the tasks completed; the others
 * (stale, foreign, outside the scopes, or a task named twice after its first) had nothing written.
 * A result records the service its task's lease names. On PostgreSQL one statement for them all:
 * the live tasks are locked in id order (a fixed order, so two such statements cannot deadlock),
 * then completed with their results, attempts and hub entries. On SQLite, inside the caller's
 * transaction, lease after lease.
 */
export async function completeLeases(
  db: Kysely<Database>,
  backend: Backend,
  holder: LeaseHolder,
  leases: readonly Omit<CompletedLease, 'now' | 'serviceId'>[],
  now: string,
  history = true,
): Promise<Set<string>> {
  const completed = new Set<string>();
  const seen = new Set<string>();
  const firsts = leases.filter((l) => !seen.has(l.taskId) && Boolean(seen.add(l.taskId)));
  if (backend.name !== 'postgres') {
    for (const lease of firsts) {
      const held = await db
        .selectFrom('tasks')
        .innerJoin('compute_services as s', 's.id', 'tasks.lease_service_id')
        .select('s.id')
        .where('tasks.id', '=', lease.taskId)
        .where('s.identifier', '=', holder.identifier)
        .where(sql<boolean>`${scopeCondition('tasks.scope', holder.scopes)}`)
        .executeTakeFirst();
      if (held && (await completeLease(db, backend, { ...lease, serviceId: held.id, now, history })))
        completed.add(lease.taskId);
    }
    return completed;
  }
  // The scopes as fixed-shape parameters (exact scopes and prefixes), so the text stays one prepared statement.
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const scope of holder.scopes) {
    if (scope.org === '*') prefixes.push('');
    else if (scope.campaign === '*') prefixes.push(`${scope.org}-`);
    else if (scope.project === '*') prefixes.push(`${scope.org}-${scope.campaign}-`);
    else exact.push(`${scope.org}-${scope.campaign}-${scope.project}`);
  }
  for (const chunk of chunked(firsts, 1000)) {
    const column = <T>(pick: (lease: Omit<CompletedLease, 'now' | 'serviceId'>) => T) => chunk.map(pick);
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
      hubs as (delete from hub_tasks where task_id in (select id from done))
      select id from done`.execute(db);
    for (const row of rows) completed.add(row.id);
  }
  return completed;
}
