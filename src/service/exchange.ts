import type { Principal } from '../auth/principal.js';
import type { AthanorError } from '../domain/errors.js';
import { isAthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { putSmallBlobs } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Kysely } from 'kysely';
import type { Store } from '../store/open-store.js';
import type { Database } from '../store/schema.js';
import type { TaskRow } from '../store/queries/tasks.js';
import type { Claim, ClaimRequest } from './claims.js';
import { claimTaskRows, describeClaims } from './claims.js';
import type { ComputeTimings } from './compute-services.js';
import type { LandedResult } from './results.js';
import { recordCompletions, recordedResult, repeatAnswer, submitResult } from './results.js';
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
export type ReportOutcome = { readonly landed: LandedResult } | { readonly refused: AthanorError };

/** What an exchange reports and asks for: results, then (with a count above 0) the next claim. */
export interface ExchangeRequest {
  readonly results: readonly ReportedResult[];
  readonly claim?: ClaimRequest | undefined;
}

/**
 * Records many small results and claims the next tasks, with the fencing rules of a single result:
 * each result carries its lease token and is refused on its own (stale or foreign lease: 409
 * `stale_lease`; a task outside the caller's scopes: 404 `not_found`; another result already
 * recorded under its lease: 409 `result_conflict`) while the others land.
 *
 * Failures go first, one by one (restart policies match outside any lock). The blobs of the
 * successes too large for their rows are written next, all durable before any result is recorded.
 * Then one write transaction records every success, each lease checked by that write itself, and
 * claims the next tasks: a fixed number of statements whatever the batch size (one per result
 * batch on PostgreSQL, four on SQLite, plus the claim's own); an exchange with only results or only
 * a claim needs no transaction of its own. A refused lease records nothing; a
 * blob written for it stays unreferenced for the object store's garbage collector. Successes that
 * did not land are answered afterwards: the recorded answer for a repeat with the same bytes, or
 * the refusal's reason. Answers one outcome per result, in order, and the claims.
 */
export async function exchange(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  serviceId: string,
  request: ExchangeRequest,
  options: { readonly timings: ComputeTimings; readonly inlineMaxBytes: number },
): Promise<{ outcomes: ReportOutcome[]; claims: Claim[] }> {
  const { results } = request;
  const { inlineMaxBytes } = options;
  const outcomes = new Array<ReportOutcome | undefined>(results.length);
  const answer = async (i: number, result: () => Promise<LandedResult>) => {
    try {
      outcomes[i] = { landed: await result() };
    } catch (error) {
      if (!isAthanorError(error) || error.status >= 500) throw error;
      outcomes[i] = { refused: error };
    }
  };
  for (const [i, r] of results.entries()) {
    if (r.outcome === 'failed')
      await answer(i, () => submitResult(store, objects, principal, r, inlineMaxBytes));
  }

  // A task named twice in one batch: its first successful result may land, the others are repeats.
  const named = new Set<string>();
  const candidates = [...results.entries()].filter(
    ([, r]) => r.outcome === 'ok' && !named.has(r.taskId) && Boolean(named.add(r.taskId)),
  );
  const blobbed = candidates.filter(([, r]) => !storeInline(r.body, inlineMaxBytes));
  const written = await putSmallBlobs(
    objects,
    blobbed.map(([, r]) => r.body),
  );
  const blobOf = new Map(blobbed.map(([i], n) => [i, written[n] as BlobInfo]));
  const held = candidates.map(([i, r]) => ({
    taskId: r.taskId,
    leaseToken: r.leaseToken,
    blob: blobOf.get(i) ?? inlineBlobInfo(r.body),
    body: r.body,
  }));

  const count = request.claim?.count ?? 0;
  let claimed: TaskRow[] = [];
  let claimRefused: AthanorError | undefined;
  // Results and a claim share one transaction; either alone is atomic by itself.
  const together = <T>(fn: (trx?: Kysely<Database>) => Promise<T>) =>
    held.length > 0 && count > 0 ? store.transaction(fn) : fn();
  const recorded = await together(async (trx) => {
    const landed = await recordCompletions(store, principal, held, inlineMaxBytes, trx);
    if (request.claim && count > 0) {
      try {
        claimed = await claimTaskRows(store, principal, serviceId, request.claim, options.timings, trx);
      } catch (error) {
        // A claim refused (the service is gone, or not the caller's) keeps the results that landed.
        if (!isAthanorError(error) || error.status >= 500) throw error;
        claimRefused = error;
      }
    }
    return landed;
  });
  for (const [n, [i]] of candidates.entries()) {
    const { resultId, completed } = recorded[n]!;
    if (completed)
      outcomes[i] = { landed: { result: resultId, status: 'complete', sha256: held[n]!.blob.sha256 } };
  }

  // The successes that did not land: repeats of results already recorded, and leases that are not
  // live (their answer says why, exactly as the single-result route would).
  for (const [i, r] of results.entries()) {
    if (outcomes[i]) continue;
    await answer(i, async () => {
      const before = await recordedResult(store, principal, r);
      if (before) return repeatAnswer(before, { outcome: r.outcome, sha256: inlineBlobInfo(r.body).sha256 });
      return submitResult(store, objects, principal, r, inlineMaxBytes);
    });
  }
  if (claimRefused) throw claimRefused;
  return { outcomes: outcomes as ReportOutcome[], claims: await describeClaims(store, claimed) };
}
