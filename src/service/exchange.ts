import type { Principal } from '../auth/principal.js';
import type { AthanorError } from '../domain/errors.js';
import { isAthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { putSmallBlobs } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Store } from '../store/open-store.js';
import { acceptedResult, recordCompletions, submitResult } from './compute.js';
import { inlineBlobInfo, storeInline } from './result-body.js';

/**
 * The largest result a batch carries (larger ones stream through `PUT /tasks/{id}/result`), and
 * the largest streamed result that is read whole before it is recorded.
 */
export const maxBatchedResultBytes = 1024 * 1024;

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
 * already submitted it gets the stored answer. Small successful results are stored in their rows
 * (`storeInline`); the larger ones' blobs are written together (all durable before any result is
 * recorded), then the results are recorded together, each lease checked by that write itself (one
 * statement on PostgreSQL); a refused lease records nothing, and a blob written for it stays
 * behind unreferenced for the object store's garbage collector. Failures, and the successes that
 * did not land, go through the single-result path (restart policies, the refusal's reason).
 * Answers one outcome per result, in order.
 */
export async function reportResults(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  results: readonly ReportedResult[],
): Promise<ReportOutcome[]> {
  const outcomes = new Array<ReportOutcome | undefined>(results.length);
  const named = new Set<string>();
  // A task named twice in one batch: its first successful result may land, the others are repeats.
  const candidates = [...results.entries()].filter(
    ([, r]) => r.outcome === 'ok' && !named.has(r.taskId) && Boolean(named.add(r.taskId)),
  );
  // Small bodies go into their result rows; only the larger ones are written as blobs.
  const blobbed = candidates.filter(([, r]) => !storeInline(r.body));
  const written = await putSmallBlobs(
    objects,
    blobbed.map(([, r]) => r.body),
  );
  const blobOf = new Map(blobbed.map(([i], n) => [i, written[n] as BlobInfo]));
  const blobs = candidates.map(([i, r]) => blobOf.get(i) ?? inlineBlobInfo(r.body));
  const recorded = await recordCompletions(
    store,
    principal,
    candidates.map(([, r], n) => ({
      taskId: r.taskId,
      leaseToken: r.leaseToken,
      blob: blobs[n] as BlobInfo,
      body: r.body,
    })),
  );
  for (const [n, [i]] of candidates.entries()) {
    const { resultId, completed } = recorded[n]!;
    const blob = blobs[n] as BlobInfo;
    if (completed) outcomes[i] = { landed: { result: resultId, status: 'complete', sha256: blob.sha256 } };
  }
  // The rest: failures, repeats of results already recorded, and leases that are not live (their
  // answer says why, exactly as the single-result route would).
  for (const [i, r] of results.entries()) {
    if (outcomes[i]) continue;
    if (r.outcome === 'ok') {
      const accepted = await acceptedResult(store, principal, r);
      if (accepted) {
        outcomes[i] = { landed: accepted };
        continue;
      }
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
