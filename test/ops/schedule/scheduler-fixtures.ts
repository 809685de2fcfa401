import type { ObjectStore } from '../../../src/objects/object-store.js';
import type {
  BackupScheduler,
  BackupSchedulerOptions,
  ScheduledRunResult,
  SchedulerLogFields,
} from '../../../src/ops/schedule/backup-scheduler.js';
import { startBackupScheduler } from '../../../src/ops/schedule/backup-scheduler.js';
import type { Gauge } from 'prom-client';
import { backupRuns } from '../../../src/ops/metrics.js';

/** A scheduler whose runs and log lines the test can read; stopped by the caller. */
export interface WatchedScheduler {
  readonly scheduler: BackupScheduler;
  readonly results: ScheduledRunResult[];
  readonly logs: { message: string; fields: SchedulerLogFields }[];
}

export function watchedScheduler(
  options: Omit<BackupSchedulerOptions, 'log' | 'onRun'> & { target: ObjectStore },
): WatchedScheduler {
  const results: ScheduledRunResult[] = [];
  const logs: { message: string; fields: SchedulerLogFields }[] = [];
  const scheduler = startBackupScheduler({
    encryption: { mode: 'none' },
    keys: { identities: [], passphrases: [] },
    ...options,
    log: (message, fields) => logs.push({ message, fields }),
    onRun: (result) => results.push(result),
  });
  return { scheduler, results, logs };
}

/** The current value of `athanor_backup_runs_total{kind,outcome}`. */
export async function runCount(kind: string, outcome: string): Promise<number> {
  const metric = await backupRuns.get();
  return metric.values.find((v) => v.labels.kind === kind && v.labels.outcome === outcome)?.value ?? 0;
}

export async function gaugeValue(gauge: Gauge): Promise<number> {
  return (await gauge.get()).values[0]?.value ?? 0;
}

/** Every key under a prefix of a target. */
export async function keysUnder(target: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of target.list(prefix)) keys.push(object.key);
  return keys;
}
