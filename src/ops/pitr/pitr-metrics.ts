import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from '../metrics.js';

/** The series of continuous protection (SQLite replication, PostgreSQL WAL archiving). */
export const pitrMetrics = {
  lag: new Gauge({
    name: 'athanor_pitr_lag_seconds',
    help: 'How long the oldest committed change not yet at the backup target has waited (0: none waiting)',
    registers: [metricsRegistry],
  }),
  lastReplicated: new Gauge({
    name: 'athanor_pitr_last_replicated_timestamp_seconds',
    help: 'Unix time of the newest change durable at the backup target (replica segment or archived WAL)',
    registers: [metricsRegistry],
  }),
  failures: new Counter({
    name: 'athanor_pitr_failures_total',
    help: 'Failed uploads of replica segments or base copies (each is retried)',
    registers: [metricsRegistry],
  }),
  healthy: new Gauge({
    name: 'athanor_pitr_healthy',
    help: '1 while continuous protection is running and current, 0 when it is failing or behind',
    registers: [metricsRegistry],
  }),
} as const;
