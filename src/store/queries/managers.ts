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

/** Demand in one scope and protocol: claimable waiting tasks, counted up to the cap. */
export interface DemandRow {
  readonly scope: string;
  readonly protocol: string;
  readonly waiting: number;
}

/**
 * Claimable waiting tasks in `scopes` (optionally only `protocols`), per scope and protocol, in
 * one statement that reads at most `cap` tasks. It walks from the hubs of active networks through
 * the `hub_tasks` primary key to each task by its key, never the tasks table as a whole: tasks leave
 * the hubs when they end, so the walk is proportional to live work, and the limit bounds it at
 * any queue size (a million waiting tasks cost what `cap` of them cost). A task on two hubs counts
 * twice: demand is an estimate, the claim is what is exact.
 */
export function demandQuery(
  db: Kysely<Database>,
  filter: { scopes: readonly Scope[]; protocols?: readonly string[] | undefined; cap: number },
) {
  const protocols = filter.protocols?.length
    ? sql`tf.protocol in (${sql.join(filter.protocols.map((p) => sql`${p}`))})`
    : sql`1 = 1`;
  return sql<DemandRow>`
    select d.scope, d.protocol, count(*) as waiting from (
      select t.scope as scope, tf.protocol as protocol
      from hubs h
      join networks n on n.key = h.network_key
      join hub_tasks ht on ht.network_key = h.network_key
      join tasks t on t.id = ht.task_id
      join transformations tf on tf.key = t.transformation_key
      where n.state = 'active' and h.weight > 0 and ht.weight > 0 and t.status = 'waiting'
        and ${scopeCondition('h.scope', filter.scopes)} and ${protocols}
        and (t.extends_task_id is null or exists (
          select 1 from tasks e where e.id = t.extends_task_id and e.status = 'complete'))
      limit ${filter.cap}
    ) d
    group by d.scope, d.protocol
    order by d.scope, d.protocol`;
}

export async function countDemand(
  db: Kysely<Database>,
  filter: { scopes: readonly Scope[]; protocols?: readonly string[] | undefined; cap: number },
): Promise<DemandRow[]> {
  if (filter.scopes.length === 0) return [];
  const { rows } = await demandQuery(db, filter).execute(db);
  return rows.map((r) => ({ scope: r.scope, protocol: r.protocol, waiting: Number(r.waiting) }));
}
