import type { Config } from '../../config/resolve-config.js';
import type { AuditEvent } from '../../service/audit.js';
import { recordAudit } from '../../service/audit.js';
import { recordBackupFailed } from '../../service/events/record-events.js';
import { openStore } from '../../store/open-store.js';

/**
 * Records a backup operation in the audit log of the configured database. Returns false when that
 * database cannot be reached (verify and prune also run on hosts without one); never throws.
 * Details hold ids, counts and codes only, never keys or passphrases.
 */
export async function auditBackupEvent(
  config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>,
  event: AuditEvent & { outcome: 'ok' | 'error'; details?: Record<string, unknown> },
  failed?: {
    readonly target: string;
    readonly backupId: string;
    readonly code: string;
    readonly message: string;
  },
): Promise<boolean> {
  try {
    const store = await openStore(config);
    try {
      await recordAudit(store, event);
      // A failed backup is also an event for the operators (the `backup.failed` webhooks).
      if (failed) {
        await recordBackupFailed(store.db, { ...failed, actor: event.actor }, new Date().toISOString());
      }
      return true;
    } finally {
      await store.close();
    }
  } catch {
    return false;
  }
}
