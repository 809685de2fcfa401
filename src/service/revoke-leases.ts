import type { Store } from '../store/open-store.js';
import { closeOpenAttempts, orphanedRunningTasks } from '../store/queries/attempts.js';
import { releaseLeases } from '../store/queries/compute.js';

/**
 * Revokes the leases of those of `taskIds` that are running but that no active network's hub
 * holds any more: they return to waiting, their attempts end `revoked`, and the holder's next
 * heartbeat no longer lists them, so it stops working on them; whatever it sends later is stale.
 */
export async function revokeOrphanedLeases(
  trx: Store['db'],
  taskIds: readonly string[],
  reason: string,
): Promise<string[]> {
  const orphaned = await orphanedRunningTasks(trx, taskIds);
  const now = new Date().toISOString();
  // The tasks first, re-checked under their row locks: a result committed meanwhile wins.
  const revoked = await releaseLeases(trx, { taskIds: orphaned }, now);
  await closeOpenAttempts(trx, revoked, { outcome: 'revoked', endedAt: now, reason });
  return revoked;
}
