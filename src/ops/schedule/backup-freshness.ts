import type { BackupEntry } from '../backup/backup-target.js';

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
