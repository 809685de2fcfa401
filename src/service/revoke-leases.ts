import type { Store } from '../store/open-store.js';
import { closeOpenAttempts, orphanedRunningTasks } from '../store/queries/attempts.js';
import { chunked } from '../store/queries/chunked.js';

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
  const revoked: string[] = [];
  for (const chunk of chunked(orphaned, 500)) {
    const rows = await trx
      .updateTable('tasks')
      .set({
        status: 'waiting',
        lease_service_id: null,
        lease_expires_at: null,
        updated_at: now,
        status_changed_at: now,
        status_reason: null,
      })
      .where('id', 'in', chunk)
      .where('status', '=', 'running')
      .returning('id')
      .execute();
    revoked.push(...rows.map((r) => r.id));
  }
  await closeOpenAttempts(trx, revoked, { outcome: 'revoked', endedAt: now, reason });
  return revoked;
}
