import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus metrics. One registry per process; `/metrics` serves it. Labels are
 * bounded: scopes and statuses only, never task or identity ids.
 */
export const metricsRegistry = new Registry();

export const backupLastSuccess = new Gauge({
  name: 'athanor_backup_last_success_timestamp_seconds',
  help: 'Unix time of the newest complete backup at the configured target',
  registers: [metricsRegistry],
});

export const backupLastVerified = new Gauge({
  name: 'athanor_backup_last_verified_timestamp_seconds',
  help: 'Unix time of the newest backup that passed a full verify (restore drill)',
  registers: [metricsRegistry],
});

export const backupDuration = new Gauge({
  name: 'athanor_backup_duration_seconds',
  help: 'How long the last successful backup took',
  registers: [metricsRegistry],
});

export const backupSize = new Gauge({
  name: 'athanor_backup_size_bytes',
  help: 'Stored size of the last successful backup',
  registers: [metricsRegistry],
});

export const backupRuns = new Counter({
  name: 'athanor_backup_runs_total',
  help: 'Scheduled backup, prune and drill runs by kind and outcome',
  labelNames: ['kind', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const claimDuration = new Histogram({
  name: 'athanor_claim_duration_seconds',
  help: 'Time to answer a claim request (without long-poll waiting)',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [metricsRegistry],
});

export const leasesExpired = new Counter({
  name: 'athanor_leases_expired_total',
  help: 'Leases the sweeper expired (their tasks returned to waiting)',
  registers: [metricsRegistry],
});

export const staleLeaseRefusals = new Counter({
  name: 'athanor_stale_lease_refusals_total',
  help: 'Results, heartbeats and releases refused because their lease token was stale or foreign',
  registers: [metricsRegistry],
});

/**
 * Series that name tenants' scopes: served only to an authenticated scrape
 * (`ATHANOR_METRICS_TOKEN`), never on the open `/metrics`.
 */
export const scopedMetricsRegistry = new Registry();

export const runningTasksByProgress = new Gauge({
  name: 'athanor_running_tasks_by_progress',
  help: "Running tasks by their lease's last reported progress (bucket in percent; none: no fraction reported)",
  labelNames: ['bucket'] as const,
  registers: [metricsRegistry],
});

export const tasksByScope = new Gauge({
  name: 'athanor_tasks',
  help: 'Tasks by scope and status (read from the state store at scrape time; authenticated scrapes only)',
  labelNames: ['scope', 'status'] as const,
  registers: [scopedMetricsRegistry],
});

export const tasksByStatus = new Gauge({
  name: 'athanor_tasks_by_status',
  help: 'Tasks by status over every scope (read from the state store at scrape time)',
  labelNames: ['status'] as const,
  registers: [metricsRegistry],
});

/** The Prometheus text of a scrape: the per-scope series only when `scoped`. */
export async function scrapeMetrics(scoped: boolean): Promise<string> {
  const open = await metricsRegistry.metrics();
  return scoped ? `${open}\n${await scopedMetricsRegistry.metrics()}` : open;
}

export const computeServicesAlive = new Gauge({
  name: 'athanor_compute_services_alive',
  help: 'Registered compute services whose heartbeat is current',
  registers: [metricsRegistry],
});

export const maintenanceMode = new Gauge({
  name: 'athanor_maintenance',
  help: '1 while maintenance mode is on',
  registers: [metricsRegistry],
});

export const dependencyUnavailable = new Counter({
  name: 'athanor_dependency_unavailable_total',
  help: 'Requests answered 503 because a dependency (database, objects) was unavailable',
  labelNames: ['dependency'] as const,
  registers: [metricsRegistry],
});

export const databaseUp = new Gauge({
  name: 'athanor_database_up',
  help: '1 when the last scrape could read the state store, 0 while it is unavailable',
  registers: [metricsRegistry],
});
