import { backupDuration, backupLastSuccess, backupLastVerified, backupSize } from '../metrics.js';
import type { BackupFreshness } from './backup-freshness.js';

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
