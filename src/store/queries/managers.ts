import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Scope } from '../../domain/scope.js';
import type { ComputeManagersTable, Database } from '../schema.js';
import { scopeCondition } from './scope-filter.js';

export type ComputeManagerRow = Selectable<ComputeManagersTable>;

export async function findManagerByName(
  db: Kysely<Database>,
  identifier: string,
  name: string,
): Promise<ComputeManagerRow | undefined> {
  return db
    .selectFrom('compute_managers')
    .selectAll()
    .where('identifier', '=', identifier)
    .where('name', '=', name)
    .executeTakeFirst();
}

export async function findManager(db: Kysely<Database>, id: string): Promise<ComputeManagerRow | undefined> {
  return db.selectFrom('compute_managers').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertManager(db: Kysely<Database>, row: ComputeManagerRow): Promise<void> {
  await db.insertInto('compute_managers').values(row).execute();
}

export async function updateManager(
  db: Kysely<Database>,
  id: string,
  changes: Partial<Omit<ComputeManagerRow, 'id'>>,
): Promise<void> {
  await db.updateTable('compute_managers').set(changes).where('id', '=', id).execute();
}

export async function listManagers(
  db: Kysely<Database>,
  filter: { identifier?: string | undefined; includeGone?: boolean | undefined } = {},
): Promise<ComputeManagerRow[]> {
  let query = db.selectFrom('compute_managers').selectAll().orderBy('identifier').orderBy('name');
  if (filter.identifier) query = query.where('identifier', '=', filter.identifier);
  if (!filter.includeGone) query = query.where('state', '=', 'active');
  return query.execute();
}

/** Active registrations whose heartbeat ran out become `expired`; answers their ids. */
export async function expireManagers(db: Kysely<Database>, now: string): Promise<string[]> {
  const rows = await db
    .updateTable('compute_managers')
    .set({ state: 'expired', updated_at: now })
    .where('state', '=', 'active')
    .where('expires_at', '<', now)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** A service a manager started, as the server knows it. */
export interface ManagedServiceRow {
  readonly id: string;
  readonly launch_id: string | null;
  readonly state: 'active' | 'deregistered' | 'expired';
  readonly registered_at: string;
  readonly heartbeat_at: string;
  readonly drain: number;
  /** Tasks it holds now. */
  readonly leases: number;
}

/** The services registered for a manager that are still active, with the tasks each holds. */
export async function managedServices(db: Kysely<Database>, managerId: string): Promise<ManagedServiceRow[]> {
  const rows = await db
    .selectFrom('compute_services as s')
    .select([
      's.id',
      's.launch_id',
      's.state',
      's.registered_at',
      's.heartbeat_at',
      's.drain',
      (eb) =>
        eb
          .selectFrom('tasks as t')
          .select((e) => e.fn.countAll<number>().as('n'))
          .where('t.status', '=', 'running')
          .where('t.lease_service_id', '=', eb.ref('s.id'))
          .as('leases'),
    ])
    .where('s.manager_id', '=', managerId)
    .where('s.state', '=', 'active')
    .orderBy('s.registered_at')
    .execute();
  return rows.map((r) => ({ ...r, leases: Number(r.leases ?? 0) }));
}

/** Marks the named launches of a manager to drain; their next heartbeat answer says so. */
export async function markDrain(db: Kysely<Database>, managerId: string, launchIds: readonly string[]) {
  if (launchIds.length === 0) return;
  await db
    .updateTable('compute_services')
    .set({ drain: 1 })
    .where('manager_id', '=', managerId)
    .where('launch_id', 'in', [...launchIds])
    .where('state', '=', 'active')
    .execute();
}

/** Demand in one hub: its claimable waiting tasks, counted up to the cap. */
export interface DemandRow {
  readonly network_key: string;
  readonly scope: string;
  readonly waiting: number;
}

/**
 * Claimable waiting tasks per hub of an active network in `scopes` (only `protocols` when given),
 * in one statement. Each hub's count is a correlated subquery that walks the hub's entries by the
 * `hub_tasks_claim` index (in claim order) and each task by its key, and stops at `cap`: the cost is at most `cap`
 * entries per hub at any queue size (tasks leave their hubs when they end, so the walk never meets
 * history), and a hub outside the scopes is never read. A task on two hubs counts twice: demand
 * is an estimate, the claim is what is exact.
 */
export function demandQuery(
  db: Kysely<Database>,
  filter: { scopes: readonly Scope[]; protocols?: readonly string[] | undefined; cap: number },
) {
  const protocols = filter.protocols?.length
    ? sql`tf.protocol in (${sql.join(filter.protocols.map((p) => sql`${p}`))})`
    : sql`1 = 1`;
  return sql<DemandRow>`
    select h.network_key, h.scope, (
      select count(*) from (
        select 1 from hub_tasks ht
        join tasks t on t.id = ht.task_id
        join transformations tf on tf.key = t.transformation_key
        where ht.network_key = h.network_key and ht.weight > 0 and t.status = 'waiting' and ${protocols}
          and (t.extends_task_id is null or exists (
            select 1 from tasks e where e.id = t.extends_task_id and e.status = 'complete'))
        -- In claim order: the walk reads the hub_tasks_claim index from its start and stops at the
        -- cap, where a scan of the table filtered by hub could read the whole of it first.
        order by ht.priority, ht.claim_key
        limit ${filter.cap}
      ) d
    ) as waiting
    from hubs h
    join networks n on n.key = h.network_key
    where n.state = 'active' and h.weight > 0 and ${scopeCondition('h.scope', filter.scopes)}
    order by h.scope, h.network_key`;
}

/** Claimable waiting tasks per scope, each counted up to `cap`. */
export async function countDemand(
  db: Kysely<Database>,
  filter: { scopes: readonly Scope[]; protocols?: readonly string[] | undefined; cap: number },
): Promise<{ scope: string; waiting: number }[]> {
  if (filter.scopes.length === 0) return [];
  const { rows } = await demandQuery(db, filter).execute(db);
  const byScope = new Map<string, number>();
  for (const row of rows) {
    const waiting = Number(row.waiting);
    if (waiting > 0) byScope.set(row.scope, Math.min(filter.cap, (byScope.get(row.scope) ?? 0) + waiting));
  }
  return [...byScope].map(([scope, waiting]) => ({ scope, waiting }));
}
