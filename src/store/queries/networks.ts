import { setImmediate } from 'node:timers/promises';
import type { Kysely, Selectable } from 'kysely';
import type { Scope } from '../../domain/scope.js';
import type {
  Database,
  HubsTable,
  NetworkState,
  NetworksTable,
  TaskStatus,
  TransformationsTable,
} from '../schema.js';
import { scopeIn } from './scope-filter.js';
import { chunked } from './chunked.js';

export type NetworkRow = Selectable<NetworksTable> & Pick<Selectable<HubsTable>, 'weight'>;
export type TransformationRow = Selectable<TransformationsTable>;

export async function insertTransformations(
  db: Kysely<Database>,
  rows: readonly TransformationRow[],
): Promise<void> {
  // Chunked: a network may hold thousands of transformations, and SQLite limits bound parameters.
  for (const chunk of chunked(rows, 200)) {
    // Between statements, let other requests run: a big network must not hold the event loop.
    await setImmediate();
    await db
      .insertInto('transformations')
      .values(chunk)
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
  }
}

/** Inserts the network, its hub and its membership; returns false when it already existed. */
export async function insertNetwork(
  db: Kysely<Database>,
  network: Selectable<NetworksTable>,
  transformationKeys: readonly string[],
): Promise<boolean> {
  const inserted = await db
    .insertInto('networks')
    .values(network)
    .onConflict((oc) => oc.column('key').doNothing())
    .returning('key')
    .execute();
  if (inserted.length === 0) return false;
  await db
    .insertInto('hubs')
    .values({ network_key: network.key, scope: network.scope, weight: 0.5 })
    .execute();
  for (const chunk of chunked(transformationKeys, 400)) {
    await setImmediate();
    await db
      .insertInto('network_transformations')
      .values(chunk.map((k) => ({ network_key: network.key, transformation_key: k })))
      .execute();
  }
  return true;
}

const networkColumns = [
  'networks.key',
  'networks.scope',
  'networks.name',
  'networks.state',
  'networks.created_at',
  'networks.created_by',
  'networks.updated_at',
  'hubs.weight',
] as const;

export async function findNetwork(db: Kysely<Database>, key: string): Promise<NetworkRow | undefined> {
  return db
    .selectFrom('networks')
    .innerJoin('hubs', 'hubs.network_key', 'networks.key')
    .select(networkColumns)
    .where('networks.key', '=', key)
    .executeTakeFirst();
}

export interface ListFilter {
  readonly scopes: readonly Scope[];
  readonly limit: number;
  readonly after?: string | undefined;
}

export async function listNetworks(
  db: Kysely<Database>,
  filter: ListFilter & { state?: NetworkState | undefined; name?: string | undefined },
): Promise<NetworkRow[]> {
  let query = db
    .selectFrom('networks')
    .innerJoin('hubs', 'hubs.network_key', 'networks.key')
    .select(networkColumns)
    .where((eb) => scopeIn(eb, 'networks.scope', filter.scopes))
    .orderBy('networks.key')
    .limit(filter.limit);
  if (filter.state) query = query.where('networks.state', '=', filter.state);
  if (filter.name) query = query.where('networks.name', '=', filter.name);
  if (filter.after) query = query.where('networks.key', '>', filter.after);
  return query.execute();
}

export async function updateNetworkState(
  db: Kysely<Database>,
  key: string,
  state: NetworkState,
  now: string,
): Promise<void> {
  await db.updateTable('networks').set({ state, updated_at: now }).where('key', '=', key).execute();
}

export async function updateHubWeight(db: Kysely<Database>, key: string, weight: number): Promise<void> {
  await db.updateTable('hubs').set({ weight }).where('network_key', '=', key).execute();
}

export async function listNetworkTransformations(
  db: Kysely<Database>,
  networkKey: string,
  limit: number,
  after: string | undefined,
): Promise<TransformationRow[]> {
  let query = db
    .selectFrom('network_transformations as nt')
    .innerJoin('transformations as t', 't.key', 'nt.transformation_key')
    .selectAll('t')
    .where('nt.network_key', '=', networkKey)
    .orderBy('t.key')
    .limit(limit);
  if (after) query = query.where('t.key', '>', after);
  return query.execute();
}

export async function countTransformations(db: Kysely<Database>, networkKey: string): Promise<number> {
  const row = await db
    .selectFrom('network_transformations')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('network_key', '=', networkKey)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function findTransformation(
  db: Kysely<Database>,
  key: string,
): Promise<TransformationRow | undefined> {
  return db.selectFrom('transformations').selectAll().where('key', '=', key).executeTakeFirst();
}

/** The transformations with these keys, by key (one query for many). */
export async function findTransformations(
  db: Kysely<Database>,
  keys: readonly string[],
): Promise<Map<string, TransformationRow>> {
  const found = new Map<string, TransformationRow>();
  const unique = [...new Set(keys)];
  for (const chunk of chunked(unique, 500)) {
    const rows = await db.selectFrom('transformations').selectAll().where('key', 'in', chunk).execute();
    for (const row of rows) found.set(row.key, row);
  }
  return found;
}

export async function listTransformations(
  db: Kysely<Database>,
  filter: ListFilter & { name?: string | undefined; protocol?: string | undefined },
): Promise<TransformationRow[]> {
  let query = db
    .selectFrom('transformations')
    .selectAll()
    .where((eb) => scopeIn(eb, 'scope', filter.scopes))
    .orderBy('key')
    .limit(filter.limit);
  if (filter.name) query = query.where('name', '=', filter.name);
  if (filter.protocol) query = query.where('protocol', '=', filter.protocol);
  if (filter.after) query = query.where('key', '>', filter.after);
  return query.execute();
}

/** Task counts by status over the tasks of a network's transformations. */
export async function networkStatusCounts(
  db: Kysely<Database>,
  networkKey: string,
): Promise<Partial<Record<TaskStatus, number>>> {
  const rows = await db
    .selectFrom('tasks')
    .innerJoin('network_transformations as nt', 'nt.transformation_key', 'tasks.transformation_key')
    .select(['tasks.status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('nt.network_key', '=', networkKey)
    .groupBy('tasks.status')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/** Task counts by scope and status over the given scopes. */
export async function scopeStatusCounts(
  db: Kysely<Database>,
  scopes: readonly Scope[],
): Promise<{ scope: string; status: TaskStatus; n: number }[]> {
  const rows = await db
    .selectFrom('tasks')
    .select(['scope', 'status', (eb) => eb.fn.countAll<number>().as('n')])
    .where((eb) => scopeIn(eb, 'scope', scopes))
    .groupBy(['scope', 'status'])
    .orderBy('scope')
    .execute();
  return rows.map((r) => ({ scope: r.scope, status: r.status, n: Number(r.n) }));
}

export async function listRestartPolicies(db: Kysely<Database>, networkKey: string) {
  return db
    .selectFrom('restart_policies')
    .select(['pattern', 'max_retries', 'created_at'])
    .where('network_key', '=', networkKey)
    .orderBy('pattern')
    .execute();
}

export async function upsertRestartPolicy(
  db: Kysely<Database>,
  row: { network_key: string; pattern: string; max_retries: number; created_at: string },
): Promise<void> {
  await db
    .insertInto('restart_policies')
    .values(row)
    .onConflict((oc) => oc.columns(['network_key', 'pattern']).doUpdateSet({ max_retries: row.max_retries }))
    .execute();
}

export async function deleteRestartPolicies(
  db: Kysely<Database>,
  networkKey: string,
  patterns: readonly string[],
): Promise<string[]> {
  if (patterns.length === 0) return [];
  const rows = await db
    .deleteFrom('restart_policies')
    .where('network_key', '=', networkKey)
    .where('pattern', 'in', [...patterns])
    .returning('pattern')
    .execute();
  return rows.map((r) => r.pattern);
}
