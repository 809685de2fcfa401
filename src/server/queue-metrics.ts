import type { MaintenanceWatch } from '../ops/maintenance.js';
import { computeServicesAlive, databaseUp, maintenanceMode, tasksByStatus } from '../ops/metrics.js';
import { asDatabaseUnavailable } from '../store/database-availability.js';
import { countActiveServices } from '../store/queries/compute.js';
import { scopeStatusCounts } from '../store/queries/networks.js';
import type { Store } from '../store/open-store.js';
import { parseScope } from '../domain/scope.js';

/** Scopes beyond this many are summed under `scope="other"`, so a scrape stays bounded. */
export const maxScopeSeries = 100;

/**
 * Reads the queue gauges from the state store just before a scrape. While the database is
 * unavailable the scrape still answers, with `athanor_database_up 0` and the last known gauges.
 */
export async function refreshQueueMetrics(store: Store, maintenance: MaintenanceWatch): Promise<void> {
  try {
    await readQueueGauges(store, maintenance);
    databaseUp.set(1);
  } catch (error) {
    if (!asDatabaseUnavailable(error)) throw error;
    databaseUp.set(0);
  }
}

async function readQueueGauges(store: Store, maintenance: MaintenanceWatch): Promise<void> {
  const rows = await scopeStatusCounts(store.db, [parseScope('*-*-*')]);
  const totals = new Map<string, number>();
  for (const row of rows) totals.set(row.scope, (totals.get(row.scope) ?? 0) + row.n);
  const kept = new Set(
    [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, maxScopeSeries)
      .map(([scope]) => scope),
  );
  tasksByStatus.reset();
  for (const row of rows)
    tasksByStatus.inc({ scope: kept.has(row.scope) ? row.scope : 'other', status: row.status }, row.n);
  computeServicesAlive.set(await countActiveServices(store.db));
  maintenanceMode.set((await maintenance.current()).on ? 1 : 0);
}
