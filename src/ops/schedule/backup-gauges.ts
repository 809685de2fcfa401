import { backupDuration, backupLastSuccess, backupLastVerified, backupSize } from '../metrics.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { listBackups } from '../backup/backup-target.js';
import type { BackupFreshness } from './backup-freshness.js';
import { backupFreshness } from './backup-freshness.js';

const seconds = (date: Date | undefined) => (date ? date.getTime() / 1000 : 0);

/**
 * Sets the backup gauges from what the target holds, so every replica (and a restarted server)
 * exports the target's truth, not only what this process did. No backup exports 0, which any
 * "older than" alert catches.
 */
export function setBackupGauges(freshness: BackupFreshness): void {
  backupLastSuccess.set(seconds(freshness.newest?.createdAt));
  backupLastVerified.set(seconds(freshness.newestVerified?.createdAt));
  const manifest = freshness.newestEntry?.manifest;
  if (manifest) {
    backupDuration.set(manifest.timings.durationMs / 1000);
    backupSize.set(manifest.totals.sizeBytes);
  }
}

/**
 * Keeps the backup gauges true to the target for `/metrics`, whether backups are scheduled
 * here, taken by hand or by another replica: the target is re-read at most every `maxAgeMs`
 * (the first scrape waits for it), and a target that cannot be read leaves the last values.
 */
export function backupGaugeRefresher(
  openTarget: () => ObjectStore,
  options: { maxAgeMs?: number; now?: () => Date } = {},
): () => Promise<void> {
  const maxAgeMs = options.maxAgeMs ?? 10_000;
  const now = options.now ?? (() => new Date());
  let target: ObjectStore | undefined;
  let readAt = -Infinity;
  let reading: Promise<void> | undefined;
  return async () => {
    if (performance.now() - readAt < maxAgeMs) return;
    reading ??= (async () => {
      try {
        target ??= openTarget();
        setBackupGauges(backupFreshness(await listBackups(target), now()));
      } catch {
        // The scheduler and `backup status` report an unreadable target; the gauges keep their values.
      } finally {
        readAt = performance.now();
        reading = undefined;
      }
    })();
    await reading;
  };
}
