import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { canAccess } from '../auth/principal.js';
import { AthanorError, isAthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { putSmallBlobs } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Store } from '../store/open-store.js';
import { completeLeases, findLeaseHolders } from '../store/queries/compute.js';
import { acceptedResult, staleLease, submitResult } from './compute.js';

/** A small result reported in a batch: its bytes travel in the request. */
export interface ReportedResult {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly outcome: 'ok' | 'failed';
  readonly body: Buffer;
}

/** What happened to one reported result: it landed, or it was refused and why. */
export type ReportOutcome =
  | {
      readonly landed: {
        readonly result: string;
        readonly status: 'complete' | 'waiting' | 'error';
        readonly sha256: string;
      };
    }
  | { readonly refused: AthanorError };

/**
 * Records many small results with the fencing rules of a single result: each carries its lease
 * token and is refused on its own (stale or foreign lease: 409 `stale_lease`; a task outside the
 * caller's scopes: 404 `not_found`) while the others land. A result sent again under the lease that
 * already submitted it gets the stored answer. The leases are read in one query, the blobs written
 * together (all durable before any result is recorded), and the successful results recorded
 * together (one statement on PostgreSQL). Failures go through the single-result path (restart
 * policies). Answers one outcome per result, in order.
 */
export async function reportResults(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  results: readonly ReportedResult[],
): Promise<ReportOutcome[]> {
  const outcomes = new Array<ReportOutcome | undefined>(results.length);
  const holders = await findLeaseHolders(store.db, [...new Set(results.map((r) => r.taskId))]);
  const now = Date.now();
  const live: number[] = [];
  for (const [i, r] of results.entries()) {
    const task = holders.get(r.taskId);
    if (!task || !canAccess(principal, task.scope)) {
      outcomes[i] = { refused: new AthanorError('not_found', `no task '${r.taskId}' in your scopes`) };
    } else if (
      r.outcome === 'ok' &&
      task.status === 'running' &&
      task.lease_token === r.leaseToken &&
      task.lease_expires_at !== null &&
      Date.parse(task.lease_expires_at) >= now &&
      task.service_identifier === principal.identifier
    ) {
      live.push(i);
    }
  }
  const blobs = await putSmallBlobs(
    objects,
    live.map((i) => results[i]!.body),
  );
  const leases = live.map((i, n) => {
    const r = results[i]!;
    const blob = blobs[n] as BlobInfo;
    return {
      taskId: r.taskId,
      leaseToken: r.leaseToken,
      resultId: `res-${randomBytes(16).toString('hex')}`,
      sha256: blob.sha256,
      sizeBytes: blob.sizeBytes,
      serviceId: holders.get(r.taskId)!.lease_service_id,
    };
  });
  const at = new Date().toISOString();
  const completed =
    store.backend.name === 'postgres'
      ? await completeLeases(store.db, store.backend, leases, at, !store.skipHistoryWrites)
      : await store.transaction((trx) =>
          completeLeases(trx, store.backend, leases, at, !store.skipHistoryWrites),
        );
  for (const [n, i] of live.entries()) {
    const lease = leases[n]!;
    if (completed.has(lease.taskId))
      outcomes[i] = { landed: { result: lease.resultId, status: 'complete', sha256: lease.sha256 } };
  }
  const liveSet = new Set(live);
  // The rest: failures, repeats of results already recorded, and leases that are not live (their
  // answer says why, exactly as the single-result route would).
  for (const [i, r] of results.entries()) {
    if (outcomes[i]) continue;
    if (liveSet.has(i)) {
      const accepted = await acceptedResult(store, principal, r);
      outcomes[i] = accepted ? { landed: accepted } : { refused: staleLease(r.taskId) };
      continue;
    }
    try {
      outcomes[i] = { landed: await submitResult(store, objects, principal, r) };
    } catch (error) {
      if (!isAthanorError(error) || error.status >= 500) throw error;
      outcomes[i] = { refused: error };
    }
  }
  return outcomes as ReportOutcome[];
}
