import type { MaintenanceWatch } from '../ops/maintenance.js';
import { timingSafeEqual } from 'node:crypto';
import {
  computeServicesAlive,
  databaseUp,
  maintenanceMode,
  runningTasksByProgress,
  tasksByScope,
  tasksByStatus,
} from '../ops/metrics.js';
import { asDatabaseUnavailable } from '../store/database-availability.js';
import { queueCounts } from '../service/queue-counts.js';
import type { Store } from '../store/open-store.js';

/** Scopes beyond this many are summed under `scope="other"`, so a scrape stays bounded. */
export const maxScopeSeries = 100;

/**
 * True when the scrape carries `Authorization: Bearer <ATHANOR_METRICS_TOKEN>`; without a
 * configured token no scrape sees per-scope series.
 */
export function metricsScrapeAuthorized(
  header: string | undefined,
  metricsToken: string | undefined,
): boolean {
  if (metricsToken === undefined || header === undefined) return false;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1]);
  const expected = Buffer.from(metricsToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Reads the queue gauges from the state store just before a scrape; per-scope ones only when
 * `scoped`. While the database is unavailable the scrape still answers, with
 * `athanor_database_up 0` and the last known gauges.
 */
export async function refreshQueueMetrics(
  store: Store,
  maintenance: MaintenanceWatch,
  options: { scoped: boolean } = { scoped: false },
): Promise<void> {
  try {
    await readQueueGauges(store, maintenance, options.scoped);
    databaseUp.set(1);
  } catch (error) {
    if (!asDatabaseUnavailable(error)) throw error;
    databaseUp.set(0);
  }
}

async function readQueueGauges(store: Store, maintenance: MaintenanceWatch, scoped: boolean): Promise<void> {
  const counts = await queueCounts(store);
  tasksByStatus.reset();
  for (const row of counts.tasksByScopeAndStatus) tasksByStatus.inc({ status: row.status }, row.n);
  tasksByScope.reset();
  if (scoped) fillScopeSeries(counts.tasksByScopeAndStatus);
  computeServicesAlive.set(counts.activeServices);
  for (const [bucket, n] of counts.runningByProgress) runningTasksByProgress.set({ bucket }, n);
  maintenanceMode.set((await maintenance.current()).on ? 1 : 0);
}

function fillScopeSeries(rows: readonly { scope: string; status: string; n: number }[]): void {
  const totals = new Map<string, number>();
  for (const row of rows) totals.set(row.scope, (totals.get(row.scope) ?? 0) + row.n);
  const kept = new Set(
    [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, maxScopeSeries)
      .map(([scope]) => scope),
  );
  for (const row of rows)
    tasksByScope.inc({ scope: kept.has(row.scope) ? row.scope : 'other', status: row.status }, row.n);
}
