import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Scope } from '../../domain/scope.js';
import type { Database, TaskStatus } from '../schema.js';
import type { ComputeServiceRow } from './compute.js';
import { scopeIn } from './scope-filter.js';
import type { ResultOutcome } from '../../domain/outcomes.js';

/**
 * Successful results per minute since `since`, over the given scopes. Timestamps are ISO text, so
 * the first 16 characters (`2026-01-31T12:34`) name the minute on both backends.
 */
export async function completionsPerMinute(
  db: Kysely<Database>,
  scopes: readonly Scope[],
  since: string,
): Promise<Map<string, number>> {
  const minute = sql<string>`substr(created_at, 1, 16)`;
  const rows = await db
    .selectFrom('results')
    .select([minute.as('minute'), (eb) => eb.fn.countAll<number>().as('n')])
    .where('outcome', '=', 'ok')
    .where('created_at', '>=', since)
    .where((eb) => scopeIn(eb, 'scope', scopes))
    .groupBy(minute)
    .execute();
  return new Map(rows.map((r) => [r.minute, Number(r.n)]));
}

export async function listComputeServices(
  db: Kysely<Database>,
  filter: { activeOnly: boolean; limit: number },
): Promise<ComputeServiceRow[]> {
  let query = db
    .selectFrom('compute_services')
    .selectAll()
    .orderBy('heartbeat_at', 'desc')
    .limit(filter.limit);
  if (filter.activeOnly) query = query.where('state', '=', 'active');
  return query.execute();
}

/** Running tasks per compute service holding their lease, over the given scopes. */
export async function leasesByService(
  db: Kysely<Database>,
  scopes: readonly Scope[],
): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('tasks')
    .select(['lease_service_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', '=', 'running')
    .where('lease_service_id', 'is not', null)
    .where((eb) => scopeIn(eb, 'scope', scopes))
    .groupBy('lease_service_id')
    .execute();
  return new Map(rows.map((r) => [r.lease_service_id as string, Number(r.n)]));
}

/** Results per compute service and outcome since `since`, over the given scopes. */
export async function resultsByService(
  db: Kysely<Database>,
  scopes: readonly Scope[],
  since: string,
): Promise<{ service: string; outcome: ResultOutcome; n: number }[]> {
  const rows = await db
    .selectFrom('results')
    .select(['compute_service_id', 'outcome', (eb) => eb.fn.countAll<number>().as('n')])
    .where('created_at', '>=', since)
    .where('compute_service_id', 'is not', null)
    .where((eb) => scopeIn(eb, 'scope', scopes))
    .groupBy(['compute_service_id', 'outcome'])
    .execute();
  return rows.map((r) => ({ service: r.compute_service_id as string, outcome: r.outcome, n: Number(r.n) }));
}

/** Task counts by transformation and status, for the given transformations. */
export async function transformationStatusCounts(
  db: Kysely<Database>,
  transformationKeys: readonly string[],
): Promise<Map<string, Partial<Record<TaskStatus, number>>>> {
  const counts = new Map<string, Partial<Record<TaskStatus, number>>>();
  if (transformationKeys.length === 0) return counts;
  const rows = await db
    .selectFrom('tasks')
    .select(['transformation_key', 'status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('transformation_key', 'in', [...transformationKeys])
    .groupBy(['transformation_key', 'status'])
    .execute();
  for (const row of rows) {
    const entry = counts.get(row.transformation_key) ?? {};
    entry[row.status] = Number(row.n);
    counts.set(row.transformation_key, entry);
  }
  return counts;
}

/** The hubs a task is actioned on, with its weight there. */
export async function hubsOfTask(
  db: Kysely<Database>,
  taskId: string,
): Promise<{ network_key: string; weight: number }[]> {
  return db
    .selectFrom('hub_tasks')
    .select(['network_key', 'weight'])
    .where('task_id', '=', taskId)
    .orderBy('network_key')
    .execute();
}

/** Keys of the networks holding a transformation. */
export async function networksOfTransformation(
  db: Kysely<Database>,
  transformationKey: string,
): Promise<string[]> {
  const rows = await db
    .selectFrom('network_transformations')
    .select('network_key')
    .where('transformation_key', '=', transformationKey)
    .orderBy('network_key')
    .execute();
  return rows.map((r) => r.network_key);
}

/** Who holds a task's lease now (running tasks only), with the service's name. */
export async function leaseOfTask(
  db: Kysely<Database>,
  taskId: string,
): Promise<{ service: string; name: string | null; expiresAt: string | null } | undefined> {
  const row = await db
    .selectFrom('tasks')
    .leftJoin('compute_services as cs', 'cs.id', 'tasks.lease_service_id')
    .select(['tasks.lease_service_id', 'tasks.lease_expires_at', 'cs.name'])
    .where('tasks.id', '=', taskId)
    .where('tasks.status', '=', 'running')
    .executeTakeFirst();
  if (!row?.lease_service_id) return undefined;
  return { service: row.lease_service_id, name: row.name, expiresAt: row.lease_expires_at };
}
