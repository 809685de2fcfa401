import os from 'node:os';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { Cron } from 'croner';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError, errorFacts } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { osActor, recordAudit } from '../../service/audit.js';
import type { Store } from '../../store/open-store.js';
import { backupIdTime } from '../backup/backup-id.js';
import { listBackups, readObject } from '../backup/backup-target.js';
import { createBackup } from '../backup/create-backup.js';
import type { DecryptionKeys, EncryptionSettings } from '../backup/encryption.js';
import { backupDecryptionKeys, backupEncryption } from '../backup/encryption.js';
import type { BackupKeySettings } from '../backup/encryption.js';
import { pruneBackups } from '../backup/prune-backups.js';
import type { RetentionPolicy } from '../backup/retention.js';
import { BackupTarget } from '../backup/target.js';
import { verifyBackup } from '../backup/verify-backup.js';
import { backupDuration, backupLastSuccess, backupLastVerified, backupRuns, backupSize } from '../metrics.js';
import { backupFreshness } from './backup-freshness.js';
import { setBackupGauges } from './backup-gauges.js';
import { assertCronSchedule, scheduleEnv } from './schedule-settings.js';

/** `backup`: a backup, then a prune by the retention policy. `drill`: a full verify of the newest backup. */
export type ScheduledKind = 'backup' | 'drill';

export interface SchedulerLogFields {
  readonly level: 'info' | 'warn' | 'error';
  /** A stable name for the event, e.g. `backup.schedule.done`. */
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Where the scheduler reports; never given secrets. */
export type SchedulerLog = (message: string, fields: SchedulerLogFields) => void;

export interface ScheduledRunResult {
  readonly kind: ScheduledKind;
  /** The slot served (`20261122T013000Z`, UTC), or undefined for `runNow`. */
  readonly slot: string | undefined;
  /** `not_leader`: another replica claimed the slot and runs it. */
  readonly outcome: 'ok' | 'error' | 'not_leader';
  readonly backupId?: string;
  /** Backups the prune after a backup removed. */
  readonly removed?: readonly string[];
  readonly error?: { readonly code: string; readonly message: string };
  readonly durationMs: number;
}

export interface BackupSchedulerOptions {
  /** The open state store; scheduler failures go to its audit log. */
  readonly store: Store;
  /** The database backed up (a backup opens its own snapshot connection). */
  readonly config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'> & BackupKeySettings;
  /** Cron schedule of backups, in UTC (5 fields, or 6 with seconds); default none. */
  readonly schedule?: string | undefined;
  /** Cron schedule of restore drills, in UTC; default none. */
  readonly drillSchedule?: string | undefined;
  /** Applied after each scheduled backup; default none (never prune). */
  readonly retention?: RetentionPolicy | undefined;
  /** The opened target (`BackupTarget.open`); a plain store is taken as one. */
  readonly target: ObjectStore;
  /** Encryption of new backups; default from the environment, as the CLI reads it. */
  readonly encryption?: EncryptionSettings;
  /** Keys that open backups for the drill; default from the environment. */
  readonly keys?: DecryptionKeys;
  readonly log: SchedulerLog;
  /** Who runs the backups, for the audit log and leases; default `scheduler:<user>@<host>`. */
  readonly actor?: string;
  /** Where the drill's scratch database goes; default the OS temp directory. */
  readonly scratchDir?: string;
  /** How often a replica that lost a slot looks whether the leader finished; default 15000. */
  readonly followerPollMs?: number;
  /** Called after each run and each lost slot, for tests and status pages. */
  readonly onRun?: (result: ScheduledRunResult) => void;
  readonly now?: () => Date;
}

export interface BackupScheduler {
  /** Settles once the gauges hold the target's state (never rejects; a failure is logged). */
  readonly ready: Promise<void>;
  /** When `kind` next runs, or undefined when it is not scheduled. */
  nextRun(kind: ScheduledKind): Date | undefined;
  /** Runs `kind` now, outside any slot (after a run of the same kind in progress). */
  runNow(kind: ScheduledKind): Promise<ScheduledRunResult>;
  /** Stops scheduling and waits for runs in progress. */
  stop(): Promise<void>;
}

/** A slot claim at the target: `schedule/slots/<kind>/<slot>`. Whoever creates it runs the slot. */
interface SlotRecord {
  readonly kind: ScheduledKind;
  readonly slot: string;
  readonly host: string;
  readonly pid: number;
  readonly actor: string;
  readonly claimedAt: string;
  readonly finishedAt?: string;
  readonly outcome?: ScheduledRunResult['outcome'];
  readonly backupId?: string;
}

const slotPrefix = (kind: ScheduledKind) => `schedule/slots/${kind}/`;
/** Slot claims older than this are deleted; far longer than any clock skew between replicas. */
const slotRetentionMs = 7 * 86_400_000;
/** setTimeout's limit; longer waits are taken in steps. */
const maxTimerMs = 2_147_483_647;
/** A follower gives up waiting for the leader after this long. */
const maxFollowMs = 6 * 3_600_000;

function slotStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

const encode = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

/**
 * Runs backups (each followed by a prune) and restore drills on cron schedules until stopped.
 * Among replicas sharing a target, exactly one runs each slot: the one that creates the slot's
 * claim at the target; the backup's writer lease is a second guard. A failed run is logged,
 * counted in `athanor_backup_runs_total{outcome="error"}`, audited, and tried again at the next
 * slot; nothing is ever thrown out of the scheduler. Invalid options throw at once.
 */
export function startBackupScheduler(options: BackupSchedulerOptions): BackupScheduler {
  const now = options.now ?? (() => new Date());
  const log: SchedulerLog = (message, fields) => {
    try {
      options.log(message, fields);
    } catch {
      // A broken logger must not stop the scheduler.
    }
  };
  const target = BackupTarget.of(options.target);
  const encryption = options.encryption ?? backupEncryption(options.config);
  const keys = options.keys ?? backupDecryptionKeys(options.config);
  const actor = options.actor ?? `scheduler:${osActor()}`;
  const followerPollMs = options.followerPollMs ?? 15_000;
  const schedules: Partial<Record<ScheduledKind, Cron>> = {};
  for (const [kind, schedule, variable] of [
    ['backup', options.schedule, scheduleEnv.schedule],
    ['drill', options.drillSchedule, scheduleEnv.drillSchedule],
  ] as const) {
    if (schedule === undefined) continue;
    assertCronSchedule(schedule, variable);
    // UTC, so replicas in different time zones compute the same slots.
    schedules[kind] = new Cron(schedule, { timezone: 'Etc/UTC' });
  }

  const stopSignal = new AbortController();
  const tails: Record<ScheduledKind, Promise<unknown>> = {
    backup: Promise.resolve(),
    drill: Promise.resolve(),
  };
  const background = new Set<Promise<unknown>>();
  let stopping: Promise<void> | undefined;

  const track = <T>(promise: Promise<T>): Promise<T> => {
    background.add(promise);
    void promise.finally(() => background.delete(promise)).catch(() => {});
    return promise;
  };

  /** Runs of one kind never overlap in this process. */
  const exclusive = (kind: ScheduledKind, run: () => Promise<ScheduledRunResult>) => {
    const result = tails[kind].then(run);
    tails[kind] = result.catch(() => {});
    return track(result);
  };

  const sleep = async (ms: number): Promise<void> => {
    try {
      await sleepFor(Math.max(0, ms), undefined, { signal: stopSignal.signal });
    } catch {
      // Aborted by stop().
    }
  };

  let refreshesStarted = 0;
  let refreshApplied = 0;
  const refreshGauges = async (): Promise<void> => {
    const refresh = ++refreshesStarted;
    try {
      const freshness = backupFreshness(await listBackups(target), now());
      // A slow listing started earlier must not overwrite what a later one found.
      if (refresh > refreshApplied) {
        refreshApplied = refresh;
        setBackupGauges(freshness);
      }
    } catch (error) {
      log(`cannot read the backups at ${target.url} for the metrics: ${errorFacts(error).message}`, {
        level: 'warn',
        event: 'backup.schedule.gauges_failed',
        target: target.url,
        ...errorFacts(error),
      });
    }
  };

  const failed = async (
    kind: ScheduledKind,
    step: 'backup' | 'prune' | 'drill',
    slot: string | undefined,
    error: unknown,
    started: number,
    extra: Partial<ScheduledRunResult> = {},
  ): Promise<ScheduledRunResult> => {
    const facts = errorFacts(error);
    backupRuns.inc({ kind: step, outcome: 'error' });
    log(
      `scheduled ${step} failed${slot ? ` (slot ${slot})` : ''}: ${facts.message}; next try at the next slot`,
      {
        level: 'error',
        event: 'backup.schedule.failed',
        kind: step,
        slot,
        target: target.url,
        ...facts,
      },
    );
    try {
      await recordAudit(options.store, {
        actor,
        action: 'backup.schedule',
        target: target.url,
        outcome: 'error',
        details: { kind: step, ...(slot ? { slot } : {}), ...facts },
      });
    } catch (auditError) {
      log(`cannot record the failed ${step} in the audit log: ${errorFacts(auditError).message}`, {
        level: 'warn',
        event: 'backup.schedule.audit_failed',
        ...errorFacts(auditError),
      });
    }
    return {
      kind,
      slot,
      outcome: 'error',
      error: facts,
      durationMs: Math.round(performance.now() - started),
      ...extra,
    };
  };

  const runBackup = async (slot: string | undefined): Promise<ScheduledRunResult> => {
    const started = performance.now();
    let backupId: string;
    try {
      const { manifest } = await createBackup({
        config: options.config,
        target,
        encryption,
        reason: slot ? `scheduled ${slot}` : 'scheduled (run now)',
        actor,
        now,
      });
      backupId = manifest.id;
      backupRuns.inc({ kind: 'backup', outcome: 'ok' });
      backupLastSuccess.set((backupIdTime(backupId) ?? now()).getTime() / 1000);
      backupDuration.set(manifest.timings.durationMs / 1000);
      backupSize.set(manifest.totals.sizeBytes);
      log(`scheduled backup ${backupId} written to ${target.url}`, {
        level: 'info',
        event: 'backup.schedule.backup_done',
        slot,
        backupId,
        rows: manifest.totals.rows,
        sizeBytes: manifest.totals.sizeBytes,
        durationMs: manifest.timings.durationMs,
      });
    } catch (error) {
      return failed('backup', 'backup', slot, error, started);
    }
    let removed: readonly string[] = [];
    if (options.retention) {
      try {
        const pruned = await pruneBackups({
          target,
          policy: options.retention,
          now,
          actor,
          auditConfig: options.config,
        });
        removed = [...pruned.remove, ...pruned.incomplete];
        backupRuns.inc({ kind: 'prune', outcome: 'ok' });
        if (removed.length > 0) {
          log(`pruned ${removed.length} backup(s) at ${target.url}`, {
            level: 'info',
            event: 'backup.schedule.prune_done',
            slot,
            removed,
          });
        }
      } catch (error) {
        return failed('backup', 'prune', slot, error, started, { backupId });
      }
    }
    await refreshGauges();
    return { kind: 'backup', slot, outcome: 'ok', backupId, removed, durationMs: elapsed(started) };
  };

  const runDrill = async (slot: string | undefined): Promise<ScheduledRunResult> => {
    const started = performance.now();
    try {
      const record = await verifyBackup({
        target,
        backup: 'latest',
        mode: 'full',
        keys,
        auditConfig: options.config,
        actor,
        ...(options.scratchDir ? { scratchDir: options.scratchDir } : {}),
      });
      if (!record.ok) {
        throw new AthanorError(
          'backup_corrupt',
          `restore drill: backup ${record.backupId} failed verification ` +
            `(${record.problems.map((p) => p.file).join(', ')}). Do not rely on it: take a new backup ` +
            `and check the target's storage`,
        );
      }
      backupRuns.inc({ kind: 'drill', outcome: 'ok' });
      backupLastVerified.set((backupIdTime(record.backupId) ?? now()).getTime() / 1000);
      log(`restore drill: backup ${record.backupId} restored and checked`, {
        level: 'info',
        event: 'backup.schedule.drill_done',
        slot,
        backupId: record.backupId,
        rows: record.rows,
        durationMs: record.durationMs,
      });
      await refreshGauges();
      return { kind: 'drill', slot, outcome: 'ok', backupId: record.backupId, durationMs: elapsed(started) };
    } catch (error) {
      return failed('drill', 'drill', slot, error, started);
    }
  };

  const run = (kind: ScheduledKind, slot: string | undefined) =>
    kind === 'backup' ? runBackup(slot) : runDrill(slot);

  const removeOldSlots = async (kind: ScheduledKind): Promise<void> => {
    try {
      const horizon = now().getTime() - slotRetentionMs;
      for await (const object of target.list(slotPrefix(kind))) {
        const time = backupIdTime(`${object.key.slice(slotPrefix(kind).length)}-000000`);
        if (time && time.getTime() < horizon) await target.delete(object.key);
      }
    } catch {
      // Old claims are only clutter; the next run tries again.
    }
  };

  /** A replica that lost a slot refreshes its gauges once the leader finished it. */
  const follow = (key: string, until: number): void => {
    void track(
      (async () => {
        while (!stopSignal.signal.aborted && now().getTime() < until) {
          await sleep(followerPollMs);
          try {
            const record = JSON.parse(
              (await readObject(target, key, 1024 * 1024)).toString('utf8'),
            ) as SlotRecord;
            if (record.finishedAt) break;
          } catch {
            // Unreadable for now: look again at the next poll.
          }
        }
        if (!stopSignal.signal.aborted) await refreshGauges();
      })(),
    );
  };

  const runSlot = async (
    kind: ScheduledKind,
    slotTime: Date,
    nextSlot: Date | null,
  ): Promise<ScheduledRunResult> => {
    const started = performance.now();
    const slot = slotStamp(slotTime);
    const key = `${slotPrefix(kind)}${slot}`;
    const claim: SlotRecord = {
      kind,
      slot: slotTime.toISOString(),
      host: os.hostname(),
      pid: process.pid,
      actor,
      claimedAt: now().toISOString(),
    };
    let leader: boolean;
    try {
      leader = await target.putIfAbsent(key, encode(claim));
    } catch (error) {
      return failed(kind, kind, slot, error, started);
    }
    if (!leader) {
      log(`${kind} slot ${slot} is run by another replica`, {
        level: 'info',
        event: 'backup.schedule.not_leader',
        kind,
        slot,
      });
      follow(key, Math.min(nextSlot?.getTime() ?? Infinity, now().getTime() + maxFollowMs));
      return { kind, slot, outcome: 'not_leader', durationMs: elapsed(started) };
    }
    const result = await run(kind, slot);
    try {
      const finished: SlotRecord = {
        ...claim,
        finishedAt: now().toISOString(),
        outcome: result.outcome,
        ...(result.backupId ? { backupId: result.backupId } : {}),
      };
      await target.put(key, encode(finished));
    } catch {
      // Followers then stop waiting at the next slot; the run itself is done.
    }
    await removeOldSlots(kind);
    return result;
  };

  const report = (result: ScheduledRunResult): ScheduledRunResult => {
    try {
      options.onRun?.(result);
    } catch {
      // A broken observer must not stop the scheduler.
    }
    return result;
  };

  const loop = async (kind: ScheduledKind, cron: Cron): Promise<void> => {
    let after = now();
    while (!stopSignal.signal.aborted) {
      const slotTime = cron.nextRun(after);
      if (!slotTime) {
        log(`the ${kind} schedule has no further runs`, {
          level: 'warn',
          event: 'backup.schedule.ended',
          kind,
        });
        return;
      }
      while (!stopSignal.signal.aborted && now().getTime() < slotTime.getTime()) {
        await sleep(Math.min(slotTime.getTime() - now().getTime(), maxTimerMs));
      }
      if (stopSignal.signal.aborted) return;
      await exclusive(kind, async () => report(await runSlot(kind, slotTime, cron.nextRun(slotTime))));
      // Slots that passed during a long run are skipped: another replica may have taken them.
      after = new Date(Math.max(now().getTime(), slotTime.getTime()));
    }
  };

  const ready = refreshGauges();
  const loops = (Object.entries(schedules) as [ScheduledKind, Cron][]).map(([kind, cron]) =>
    loop(kind, cron).catch((error: unknown) => {
      log(`the ${kind} schedule stopped: ${errorFacts(error).message}`, {
        level: 'error',
        event: 'backup.schedule.crashed',
        kind,
        ...errorFacts(error),
      });
    }),
  );

  log(`backup scheduler started for ${target.url}`, {
    level: 'info',
    event: 'backup.schedule.started',
    target: target.url,
    schedule: options.schedule ?? 'off',
    drillSchedule: options.drillSchedule ?? 'off',
    retention: options.retention ?? 'off',
    nextBackup: schedules.backup?.nextRun(now())?.toISOString(),
    nextDrill: schedules.drill?.nextRun(now())?.toISOString(),
  });
  if (schedules.backup && !options.retention) {
    log(`scheduled backups are never pruned: set ${scheduleEnv.keep} (e.g. hourly=24,daily=7)`, {
      level: 'warn',
      event: 'backup.schedule.no_retention',
    });
  }
  if (schedules.drill && encryption.mode === 'recipients' && keys.identities.length === 0) {
    log(
      'restore drills will fail: backups are encrypted to age recipients but no identity opens them; ' +
        'set ATHANOR_BACKUP_AGE_IDENTITY_FILE or turn drills off',
      { level: 'warn', event: 'backup.schedule.drill_without_key' },
    );
  }

  return {
    ready,
    nextRun(kind) {
      return schedules[kind]?.nextRun(now()) ?? undefined;
    },
    runNow(kind) {
      if (stopSignal.signal.aborted) {
        return Promise.reject(new AthanorError('invalid_argument', 'the backup scheduler is stopped'));
      }
      return exclusive(kind, async () => report(await run(kind, undefined)));
    },
    stop() {
      stopping ??= (async () => {
        stopSignal.abort();
        await Promise.all(loops);
        while (background.size > 0) await Promise.allSettled([...background]);
        await ready;
        log('backup scheduler stopped', { level: 'info', event: 'backup.schedule.stopped' });
      })();
      return stopping;
    },
  };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
