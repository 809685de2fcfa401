import { claimKey } from '../../domain/claim-key.js';
import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import type { Database, HubTasksTable, ResultsTable, TasksTable, TaskStatus } from '../schema.js';
import type { ListFilter } from './networks.js';
import { scopeIn } from './scope-filter.js';
import { chunked } from './chunked.js';

export type TaskRow = Selectable<TasksTable>;
/** A result as listed and shown: every column but its inline bytes (read only to serve them). */
export type ResultRow = Omit<Selectable<ResultsTable>, 'body'>;

const resultColumns = [
  'id',
  'task_id',
  'scope',
  'attempt',
  'lease_token',
  'outcome',
  'blob_sha256',
  'size_bytes',
  'error',
  'compute_service_id',
  'created_at',
] as const satisfies readonly (keyof ResultRow)[];

export async function insertTasks(db: Kysely<Database>, rows: readonly TaskRow[]): Promise<void> {
  for (const chunk of chunked(rows, 100)) await db.insertInto('tasks').values(chunk).execute();
}

export async function findTasks(db: Kysely<Database>, ids: readonly string[]): Promise<Map<string, TaskRow>> {
  const found = new Map<string, TaskRow>();
  for (const chunk of chunked(ids, 500)) {
    const rows = await db.selectFrom('tasks').selectAll().where('id', 'in', chunk).execute();
    for (const row of rows) found.set(row.id, row);
  }
  return found;
}

export async function findTask(db: Kysely<Database>, id: string): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listTasks(
  db: Kysely<Database>,
  filter: ListFilter & {
    status?: TaskStatus | undefined;
    transformationKey?: string | undefined;
    networkKey?: string | undefined;
  },
): Promise<TaskRow[]> {
  let query = db
    .selectFrom('tasks')
    .selectAll('tasks')
    .where((eb) => scopeIn(eb, 'tasks.scope', filter.scopes))
    .orderBy('tasks.id')
    .limit(filter.limit);
  if (filter.status) query = query.where('tasks.status', '=', filter.status);
  if (filter.transformationKey)
    query = query.where('tasks.transformation_key', '=', filter.transformationKey);
  if (filter.networkKey) {
    const networkKey = filter.networkKey;
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom('network_transformations as nt')
          .select('nt.network_key')
          .whereRef('nt.transformation_key', '=', 'tasks.transformation_key')
          .where('nt.network_key', '=', networkKey),
      ),
    );
  }
  if (filter.after) query = query.where('tasks.id', '>', filter.after);
  return query.execute();
}

export async function updateTasks(
  db: Kysely<Database>,
  ids: readonly string[],
  changes: Partial<Omit<TaskRow, 'id'>>,
): Promise<void> {
  for (const chunk of chunked(ids, 500)) {
    await db.updateTable('tasks').set(changes).where('id', 'in', chunk).execute();
  }
}

/** Every task that extends one of `ids`, directly or through a chain. */
export async function findExtendingTasks(db: Kysely<Database>, ids: readonly string[]): Promise<TaskRow[]> {
  const found: TaskRow[] = [];
  let frontier = [...ids];
  const seen = new Set(ids);
  while (frontier.length > 0) {
    const next: TaskRow[] = [];
    for (const chunk of chunked(frontier, 500)) {
      next.push(
        ...(await db.selectFrom('tasks').selectAll().where('extends_task_id', 'in', chunk).execute()),
      );
    }
    frontier = [];
    for (const row of next) {
      if (seen.has(row.id)) continue;
      seen.add(row.id);
      found.push(row);
      frontier.push(row.id);
    }
  }
  return found;
}

/**
 * Puts tasks on a hub (or changes their weight there). Each entry gets a claim key drawn after the
 * smallest key at its priority, so it competes fairly with the entries already waiting.
 */
export async function actionOnHub(
  db: Kysely<Database>,
  networkKey: string,
  tasks: readonly { id: string; priority: number }[],
  weight: number,
  now: string,
): Promise<void> {
  const offsets = new Map<number, number>();
  for (const priority of new Set(tasks.map((t) => t.priority))) {
    // The smallest key still waiting to be claimed: running tasks and weight-0 entries keep small
    // keys that would otherwise put every new entry ahead of the waiting ones.
    const { rows } = await sql<{ claim_key: number }>`
      select ht.claim_key from hub_tasks ht
      where ht.network_key = ${networkKey} and ht.priority = ${priority} and ht.weight > 0
        and exists (select 1 from tasks t where t.id = ht.task_id and t.status = 'waiting' limit 1 offset 0)
      order by ht.claim_key
      limit 1`.execute(db);
    offsets.set(priority, rows[0]?.claim_key ?? 0);
  }
  const rows: Selectable<HubTasksTable>[] = tasks.map((t) => ({
    network_key: networkKey,
    task_id: t.id,
    weight,
    actioned_at: now,
    priority: t.priority,
    claim_key: claimKey(weight, offsets.get(t.priority) ?? 0),
  }));
  for (const chunk of chunked(rows, 200)) {
    await db
      .insertInto('hub_tasks')
      .values(chunk)
      .onConflict((oc) =>
        oc.columns(['network_key', 'task_id']).doUpdateSet((eb) => ({
          weight: eb.ref('excluded.weight'),
          claim_key: eb.ref('excluded.claim_key'),
        })),
      )
      .execute();
  }
}

/** Copies a new priority to the tasks' hub entries, keeping their claim keys. */
export async function setHubPriority(db: Kysely<Database>, taskIds: readonly string[], priority: number) {
  for (const chunk of chunked(taskIds, 500)) {
    await db.updateTable('hub_tasks').set({ priority }).where('task_id', 'in', chunk).execute();
  }
}

/** Removes tasks from one hub (or every hub when `networkKey` is undefined); returns those removed. */
export async function removeFromHubs(
  db: Kysely<Database>,
  taskIds: readonly string[],
  networkKey: string | undefined,
): Promise<string[]> {
  const removed: string[] = [];
  for (const chunk of chunked(taskIds, 500)) {
    let query = db.deleteFrom('hub_tasks').where('task_id', 'in', chunk);
    if (networkKey) query = query.where('network_key', '=', networkKey);
    removed.push(...(await query.returning('task_id').execute()).map((r) => r.task_id));
  }
  return removed;
}

export async function listActionedTasks(
  db: Kysely<Database>,
  networkKey: string,
  limit: number,
  after: string | undefined,
): Promise<(TaskRow & { hub_weight: number })[]> {
  let query = db
    .selectFrom('hub_tasks')
    .innerJoin('tasks', 'tasks.id', 'hub_tasks.task_id')
    .selectAll('tasks')
    .select('hub_tasks.weight as hub_weight')
    .where('hub_tasks.network_key', '=', networkKey)
    .orderBy('tasks.id')
    .limit(limit);
  if (after) query = query.where('tasks.id', '>', after);
  return query.execute();
}

/** Whether the transformation belongs to the network (tasks may only be actioned on such hubs). */
export async function transformationsInNetwork(
  db: Kysely<Database>,
  networkKey: string,
  transformationKeys: readonly string[],
): Promise<Set<string>> {
  if (transformationKeys.length === 0) return new Set();
  const rows = await db
    .selectFrom('network_transformations')
    .select('transformation_key')
    .where('network_key', '=', networkKey)
    .where('transformation_key', 'in', [...new Set(transformationKeys)])
    .execute();
  return new Set(rows.map((r) => r.transformation_key));
}

export async function listResults(db: Kysely<Database>, taskId: string): Promise<ResultRow[]> {
  return db
    .selectFrom('results')
    .select(resultColumns)
    .where('task_id', '=', taskId)
    .orderBy('created_at')
    .execute();
}

export async function findResult(db: Kysely<Database>, id: string): Promise<ResultRow | undefined> {
  return db.selectFrom('results').select(resultColumns).where('id', '=', id).executeTakeFirst();
}

/** The bytes of a result stored in its row; undefined when they are a blob (or no such result). */
export async function findInlineResultBody(db: Kysely<Database>, id: string): Promise<Buffer | undefined> {
  const row = await db.selectFrom('results').select('body').where('id', '=', id).executeTakeFirst();
  return row?.body ?? undefined;
}
