import type { Principal } from '../auth/principal.js';
import { canAccess, visibleScopes } from '../auth/principal.js';
import type { TaskStatus } from '../domain/task-state.js';
import type { Store } from '../store/open-store.js';
import { findNetwork } from '../store/queries/networks.js';
import * as q from '../store/queries/queue-views.js';
import type { StatusCounts } from './networks.js';
import { requireNetwork } from './networks.js';
import { getTask } from './tasks.js';

/** Successful results per minute over the last `minutes`, oldest first, in the caller's scopes. */
export async function completionsPerMinute(
  store: Store,
  principal: Principal,
  minutes: number,
  now = new Date(),
): Promise<{ minute: string; completions: number }[]> {
  const end = Math.floor(now.getTime() / 60_000) * 60_000;
  const start = end - (minutes - 1) * 60_000;
  const counts = await q.completionsPerMinute(
    store.db,
    visibleScopes(principal, undefined),
    new Date(start).toISOString(),
  );
  return Array.from({ length: minutes }, (_, i) => {
    const minute = new Date(start + i * 60_000).toISOString().slice(0, 16);
    return { minute, completions: counts.get(minute) ?? 0 };
  });
}

/** One compute service as the console shows it; leases and results count only the caller's scopes. */
export interface ComputeServiceView {
  readonly id: string;
  readonly identity: string;
  readonly name: string;
  readonly hostname: string | null;
  readonly state: string;
  readonly registeredAt: string;
  readonly heartbeatAt: string;
  readonly expiresAt: string;
  readonly leasesHeld: number;
  readonly recentOk: number;
  readonly recentFailed: number;
}

export async function listComputeServices(
  store: Store,
  principal: Principal,
  options: { activeOnly: boolean; recentMinutes: number; limit?: number },
  now = new Date(),
): Promise<ComputeServiceView[]> {
  const scopes = visibleScopes(principal, undefined);
  const since = new Date(now.getTime() - options.recentMinutes * 60_000).toISOString();
  const [rows, leases, results] = await Promise.all([
    q.listComputeServices(store.db, { activeOnly: options.activeOnly, limit: options.limit ?? 200 }),
    q.leasesByService(store.db, scopes),
    q.resultsByService(store.db, scopes, since),
  ]);
  return rows.map((row) => ({
    id: row.id,
    identity: row.identifier,
    name: row.name,
    hostname: row.hostname,
    state: row.state,
    registeredAt: row.registered_at,
    heartbeatAt: row.heartbeat_at,
    expiresAt: row.expires_at,
    leasesHeld: leases.get(row.id) ?? 0,
    recentOk: results.find((r) => r.service === row.id && r.outcome === 'ok')?.n ?? 0,
    recentFailed: results.find((r) => r.service === row.id && r.outcome === 'failed')?.n ?? 0,
  }));
}

/** Task counts by status for each of the given transformations of a network the caller may see. */
export async function networkTransformationCounts(
  store: Store,
  principal: Principal,
  networkKey: string,
  transformationKeys: readonly string[],
): Promise<Map<string, StatusCounts>> {
  await requireNetwork(store, principal, networkKey);
  return q.transformationStatusCounts(store.db, transformationKeys);
}

/**
 * Where a task is: the hubs it is actioned on, the networks holding its transformation, and the
 * compute service holding its lease while it runs.
 */
export async function taskPlacement(
  store: Store,
  principal: Principal,
  taskId: string,
): Promise<{
  hubs: { network: string; weight: number }[];
  networks: string[];
  lease: { service: string; name: string | null; expiresAt: string | null } | undefined;
}> {
  const task = await getTask(store, principal, taskId);
  const [hubs, networks, lease] = await Promise.all([
    q.hubsOfTask(store.db, taskId),
    q.networksOfTransformation(store.db, task.transformation),
    q.leaseOfTask(store.db, taskId),
  ]);
  const visible: string[] = [];
  for (const key of networks) {
    const row = await findNetwork(store.db, key);
    if (row && canAccess(principal, row.scope)) visible.push(key);
  }
  return {
    hubs: hubs
      .filter((h) => visible.includes(h.network_key))
      .map((h) => ({ network: h.network_key, weight: h.weight })),
    networks: visible,
    lease,
  };
}

/** Totals by status over every scope the caller holds. */
export function sumStatusCounts(byScope: Record<string, StatusCounts>): Record<TaskStatus, number> {
  const total: Record<TaskStatus, number> = {
    waiting: 0,
    running: 0,
    complete: 0,
    error: 0,
    invalid: 0,
    deleted: 0,
  };
  for (const counts of Object.values(byScope))
    for (const [status, n] of Object.entries(counts)) total[status as TaskStatus] += n ?? 0;
  return total;
}
