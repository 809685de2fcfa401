import type { Kysely, RawBuilder, SqlBool } from 'kysely';
import { sql } from 'kysely';
import { operatorEventScope } from '../../domain/event-types.js';
import type { Scope } from '../../domain/scope.js';
import type { Database } from '../schema.js';
import { chunked } from './chunked.js';
import { scopeCondition } from './scope-filter.js';

export interface EventRow {
  readonly position: number;
  readonly scope: string;
  readonly type: string;
  readonly network_key: string | null;
  readonly subject: string | null;
  readonly data: string | null;
  readonly created_at: string;
}

/** A new event, written in the transaction of the change it describes. */
export interface NewEvent {
  readonly scope: string;
  readonly type: string;
  readonly networkKey?: string | null | undefined;
  readonly subject?: string | null | undefined;
  readonly data?: Record<string, unknown> | null | undefined;
}

export async function insertEvents(db: Kysely<Database>, events: readonly NewEvent[], now: string) {
  for (const chunk of chunked(events, 500)) {
    await db
      .insertInto('events')
      .values(
        chunk.map((e) => ({
          position: null,
          scope: e.scope,
          type: e.type,
          network_key: e.networkKey ?? null,
          subject: e.subject ?? null,
          data: e.data ? JSON.stringify(e.data) : null,
          created_at: now,
        })),
      )
      .execute();
  }
}

/**
 * One event per task and hub it is on (one with no network for a task on none), in one
 * INSERT … SELECT per 500 tasks. Written before the change takes the tasks off their hubs.
 */
export async function insertTaskEvents(
  db: Kysely<Database>,
  taskIds: readonly string[],
  type: string,
  now: string,
  data: Record<string, unknown> | null = null,
): Promise<void> {
  for (const chunk of chunked([...new Set(taskIds)], 500)) {
    if (chunk.length === 0) continue;
    await sql`insert into events (position, scope, type, network_key, subject, data, created_at)
      select null, t.scope, ${type}, ht.network_key, t.id, ${data ? JSON.stringify(data) : null}, ${now}
      from tasks t left join hub_tasks ht on ht.task_id = t.id
      where t.id in (${sql.join(chunk)})`.execute(db);
  }
}

/**
 * The same task events as a data-modifying CTE over `source` (a CTE returning `id` and `scope`
 * of the tasks changed), for the statements that complete tasks in one go: it reads the hub
 * entries from the statement's snapshot, so it still sees those the same statement deletes.
 * Writes nothing when `enabled` is false.
 */
export function taskEventsCte(
  source: string,
  type: string,
  now: string,
  enabled: boolean,
): RawBuilder<unknown> {
  return sql`insert into events (position, scope, type, network_key, subject, data, created_at)
      select cast(null as integer), s.scope, cast(${type} as text), ht.network_key, s.id, cast(null as text),
        cast(${now} as text)
      from ${sql.table(source)} s left join hub_tasks ht on ht.task_id = s.id
      where ${enabled}`;
}

/**
 * Numbers the committed events that have no position yet, in id order after the highest
 * position: one UPDATE for up to `limit` events. Call under the sequencer's leader lock.
 * Answers the rows it numbered.
 */
export async function sequenceEvents(db: Kysely<Database>, limit: number): Promise<EventRow[]> {
  const top = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('position').as('p'))
    .executeTakeFirst();
  const base = Number(top?.p ?? 0);
  const { rows } = await sql<EventRow>`update events set position = ${base} + numbered.n
    from (select id, row_number() over (order by id) as n from events
          where position is null order by id limit ${limit}) numbered
    where events.id = numbered.id
    returning events.position, events.scope, events.type, events.network_key, events.subject,
      events.data, events.created_at`.execute(db);
  return rows.sort((a, b) => a.position - b.position);
}

/** Whether some committed event still waits for its position (read from the partial index). */
export async function hasUnsequencedEvents(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectFrom('events')
    .select('id')
    .where('position', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export interface EventFilter {
  readonly after: number;
  readonly scopes: readonly Scope[];
  readonly types?: readonly string[] | undefined;
  readonly networkKeys?: readonly string[] | undefined;
  readonly limit: number;
  /** Also the events of the operator scope (for admins); without it, never them. */
  readonly operator?: boolean | undefined;
}

/** Numbered events after a position, in position order, within the scopes. */
export async function listEvents(db: Kysely<Database>, filter: EventFilter): Promise<EventRow[]> {
  const operator = filter.operator === true && !filter.networkKeys?.length;
  if (filter.scopes.length === 0 && !operator) return [];
  const within = sql<SqlBool>`(${scopeCondition('scope', filter.scopes)} and scope <> ${operatorEventScope})`;
  let query = db
    .selectFrom('events')
    .select(['position', 'scope', 'type', 'network_key', 'subject', 'data', 'created_at'])
    .where('position', 'is not', null)
    .where('position', '>', filter.after)
    .where(operator ? sql<SqlBool>`(${within} or scope = ${operatorEventScope})` : within)
    .orderBy('position')
    .limit(filter.limit);
  if (filter.types?.length) query = query.where('type', 'in', filter.types);
  if (filter.networkKeys?.length) query = query.where('network_key', 'in', filter.networkKeys);
  return (await query.execute()) as EventRow[];
}

/** The highest position numbered so far (0 for an empty log). */
export async function lastPosition(db: Kysely<Database>): Promise<number> {
  const top = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('position').as('p'))
    .executeTakeFirst();
  return Number(top?.p ?? 0);
}

/**
 * Deletes events (and delivery log entries) older than `before`. Events are read from the oldest
 * by id up to the first one newer than `before` (ids grow with time), so no index on their time
 * is needed: every event row costs one index less to write.
 */
export async function deleteEventsBefore(db: Kysely<Database>, before: string): Promise<number> {
  const oldest = await db.selectFrom('events').select('created_at').orderBy('id').limit(1).executeTakeFirst();
  if (!oldest || oldest.created_at >= before) return 0;
  const firstKept = await db
    .selectFrom('events')
    .select('id')
    .where('created_at', '>=', before)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  let query = db.deleteFrom('events');
  if (firstKept) query = query.where('id', '<', firstKept.id);
  const deleted = await query.executeTakeFirst();
  const firstLogKept = await db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('at', '>=', before)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  let log = db.deleteFrom('webhook_deliveries');
  if (firstLogKept) log = log.where('id', '<', firstLogKept.id);
  await log.execute();
  return Number(deleted.numDeletedRows);
}

/** Networks among `keys` whose hub holds no task any more (every actioned task finished). */
export async function finishedNetworks(
  db: Kysely<Database>,
  keys: readonly string[],
): Promise<{ key: string; scope: string }[]> {
  if (keys.length === 0) return [];
  return db
    .selectFrom('networks as n')
    .select(['n.key', 'n.scope'])
    .where('n.key', 'in', keys)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(selectFrom('hub_tasks as ht').select('ht.task_id').whereRef('ht.network_key', '=', 'n.key')),
      ),
    )
    .execute();
}
