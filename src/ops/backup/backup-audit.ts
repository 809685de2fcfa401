import type { Config } from '../../config/resolve-config.js';
import type { AuditEvent } from '../../service/audit.js';
import { recordAudit } from '../../service/audit.js';
import { openStore } from '../../store/open-store.js';

/**
 * Records a backup operation in the audit log of the configured database. Returns false when that
 * database cannot be reached (verify and prune also run on hosts without one); never throws.
 * Details hold ids, counts and codes only, never keys or passphrases.
 */
export async function auditBackupEvent(
  config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>,
  event: AuditEvent & { outcome: 'ok' | 'error'; details?: Record<string, unknown> },
): Promise<boolean> {
  try {
    const store = await openStore(config);
    try {
      await recordAudit(store, event);
      return true;
    } finally {
      await store.close();
    }
  } catch {
    return false;
  }
}
