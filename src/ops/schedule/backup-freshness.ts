import type { BackupEntry } from '../backup/backup-target.js';
import { AthanorError } from '../../domain/errors.js';
import { formatDuration } from '../../domain/parse-duration.js';
import { scheduleEnv } from './schedule-settings.js';

/** One backup as the freshness check sees it. */
export interface BackupAge {
  readonly id: string;
  readonly createdAt: Date;
  /** Milliseconds since the backup was taken; 0 for one dated in the future (a clock ahead of ours). */
  readonly ageMs: number;
}

export interface BackupFreshness {
  /** The newest complete backup with a sound manifest. */
  readonly newest: BackupAge | undefined;
  /** The newest backup whose last full verify (restore drill) passed. */
  readonly newestVerified: BackupAge | undefined;
  /** The newest complete backup, for its duration and size. */
  readonly newestEntry: BackupEntry | undefined;
}

/**
 * Finds the newest good and the newest verified backup among a target's backups (`listBackups`).
 * Ages count from the backup id's time, which is when the backup started, close to its snapshot.
 */
export function backupFreshness(entries: readonly BackupEntry[], now: Date): BackupFreshness {
  const sound = entries.filter((e) => e.manifest !== undefined);
  const age = (entry: BackupEntry | undefined): BackupAge | undefined =>
    entry && {
      id: entry.id,
      createdAt: entry.createdAt,
      ageMs: Math.max(0, now.getTime() - entry.createdAt.getTime()),
    };
  const newestEntry = sound.at(-1);
  return {
    newest: age(newestEntry),
    newestVerified: age(sound.findLast((e) => e.verification?.ok === true && e.verification.mode === 'full')),
    newestEntry,
  };
}

export interface FreshnessCheck {
  /** How old the backup may be, in milliseconds. */
  readonly maxAgeMs: number;
  /** That age as the operator wrote it (`26h`), for messages. */
  readonly maxAgeText: string;
  /** Count only backups whose last full verify passed. */
  readonly verified: boolean;
  /** The target's URL, for messages. */
  readonly targetUrl: string;
}

export interface FreshnessVerdict extends BackupFreshness {
  readonly ok: boolean;
  /** The backup judged: the newest (verified, with `verified`) one. */
  readonly subject: BackupAge | undefined;
  /** Complete backups at the target. */
  readonly backups: number;
  /** Why it is not ok, with the next step; undefined when ok. */
  readonly problem: AthanorError | undefined;
}

/** A backup's age for JSON output and error details. */
export function backupAgeJson(age: BackupAge | undefined) {
  return age
    ? { id: age.id, createdAt: age.createdAt.toISOString(), ageSeconds: Math.floor(age.ageMs / 1000) }
    : null;
}

/**
 * `athanor backup status`: is the newest (verified) backup younger than the allowed age? When not,
 * `problem` is the `backup_stale` error that says what to check.
 */
export function freshnessVerdict(
  entries: readonly BackupEntry[],
  now: Date,
  check: FreshnessCheck,
): FreshnessVerdict {
  const freshness = backupFreshness(entries, now);
  const subject = check.verified ? freshness.newestVerified : freshness.newest;
  const ok = subject !== undefined && subject.ageMs <= check.maxAgeMs;
  const backups = entries.filter((e) => e.manifest !== undefined).length;
  if (ok) return { ...freshness, ok, subject, backups, problem: undefined };
  const what = check.verified ? 'verified backup' : 'complete backup';
  const remedy = check.verified
    ? "prove one restorable with 'athanor backup verify' and check the restore drills run " +
      `(${scheduleEnv.drillSchedule}, metric athanor_backup_runs_total{kind="drill",outcome="error"})`
    : "take one now with 'athanor backup create' and check the scheduled backups run " +
      `(${scheduleEnv.schedule}, the server or 'athanor backup schedule' log, metric ` +
      'athanor_backup_runs_total{outcome="error"})';
  const problem = new AthanorError(
    'backup_stale',
    subject
      ? `the newest ${what} at ${check.targetUrl} (${subject.id}) is ${formatDuration(subject.ageMs)} old, ` +
          `older than ${check.maxAgeText}: ${remedy}`
      : `there is no ${what} at ${check.targetUrl}: ${remedy}`,
    {
      details: {
        target: check.targetUrl,
        maxAgeSeconds: Math.floor(check.maxAgeMs / 1000),
        newest: backupAgeJson(subject),
      },
    },
  );
  return { ...freshness, ok, subject, backups, problem };
}
