import { recordTaskEvents } from './events/record-events.js';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Principal } from '../auth/principal.js';
import { canAccess } from '../auth/principal.js';
import { AthanorError, isAthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { blobKey, putBlob } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { LeaseRef } from '../store/queries/compute.js';
import type { Store } from '../store/open-store.js';
import { closeAttempt } from '../store/queries/attempts.js';
import * as q from '../store/queries/compute.js';
import { findTask, removeFromHubs, type TaskRow, updateTasks } from '../store/queries/tasks.js';
import type { Database } from '../store/schema.js';
import { iso } from './compute-services.js';
import { requireLease, staleLease } from './leases.js';
import { inlineBlobInfo, storeInline } from './result-body.js';
import { matchRestartPatterns, matchTimeoutMs } from './restart-patterns.js';

export const maxErrorTextBytes = 64 * 1024;
/** Restart patterns are matched against this much of a failure's text: all of any sane traceback. */
export const maxRestartMatchBytes = 16 * 1024 * 1024;

export interface ResultSubmission {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly outcome: 'ok' | 'failed';
  /** The result bytes; for a failure, the error text (its first 64 KiB are kept on the task too). */
  readonly body: Readable | Buffer;
}

/** What a recorded result answers: its id, the task's status after it, and its bytes' digest. */
export interface LandedResult {
  readonly result: string;
  readonly status: 'complete' | 'waiting' | 'error';
  readonly sha256: string;
}

/**
 * Stores a result: the body streams into the object store first (a small success goes into its
 * row instead, `inlineMaxBytes`), then one transaction checks the lease and records it. A stale or
 * foreign lease is refused (409) and leaves no status change and no result row; a streamed body is
 * not stored for a lease found stale before its upload, a success already in memory is stored and
 * then checked by the write (its blob is left unreferenced when refused). The same result sent
 * again under the lease that already recorded one (its answer was lost) gets the recorded answer
 * when its outcome and bytes are the recorded ones, else 409 `result_conflict`.
 */
export async function submitResult(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  submission: ResultSubmission,
  inlineMaxBytes: number,
): Promise<LandedResult> {
  const stored: { blob?: BlobInfo } = {};
  try {
    return await recordResult(store, objects, principal, submission, inlineMaxBytes, stored);
  } catch (error) {
    if (!isAthanorError(error) || error.code !== 'stale_lease') throw error;
    const recorded = await recordedResult(store, principal, submission);
    if (!recorded) throw error;
    const sha256 = stored.blob?.sha256 ?? (await digestOf(submission.body));
    return repeatAnswer(recorded, { ...submission, sha256 });
  }
}

async function digestOf(body: Readable | Buffer): Promise<string> {
  const hash = createHash('sha256');
  if (Buffer.isBuffer(body)) return hash.update(body).digest('hex');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function recordResult(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  submission: ResultSubmission,
  inlineMaxBytes: number,
  stored: { blob?: BlobInfo },
): Promise<LandedResult> {
  const { taskId, leaseToken } = submission;
  if (submission.outcome === 'ok' && Buffer.isBuffer(submission.body)) {
    const body = submission.body;
    const blob = storeInline(body, inlineMaxBytes) ? inlineBlobInfo(body) : await putBlob(objects, body);
    stored.blob = blob;
    return completeHeld(store, principal, { taskId, leaseToken, blob, body, inlineMaxBytes });
  }
  const leased = await requireLease(store, principal, taskId, leaseToken);
  const blob: BlobInfo = await putBlob(objects, submission.body);
  stored.blob = blob;
  if (submission.outcome === 'ok') return completeWith(store, leased, leaseToken, blob);
  // Policies see the whole failure text (message and traceback), not the head kept on the task.
  const fullText = await readPrefix(objects, blob.sha256, maxRestartMatchBytes);
  const errorText = Buffer.from(fullText).subarray(0, maxErrorTextBytes).toString('utf8');
  const restartMatches = await matchRestartPolicies(store, taskId, fullText);
  // When the lease runs out during the upload, the blob stays behind unreferenced. It is not
  // deleted here: another result with the same bytes may be committing a reference to it.
  return store.transaction(async (trx) => {
    const task = await requireLease(store, principal, taskId, leaseToken, trx);
    const now = iso(Date.now());
    const resultId = `res-${randomBytes(16).toString('hex')}`;
    await q.insertResult(trx, {
      id: resultId,
      task_id: taskId,
      scope: task.scope,
      attempt: task.attempts,
      lease_token: leaseToken,
      outcome: submission.outcome,
      blob_sha256: blob.sha256,
      size_bytes: blob.sizeBytes,
      error: errorText,
      compute_service_id: task.lease_service_id,
      created_at: now,
      body: null,
    });
    await closeAttempt(trx, taskId, leaseToken, {
      outcome: submission.outcome,
      endedAt: now,
      resultId,
    });
    const status = await applyRestartPolicies(trx, task, restartMatches, now);
    await updateTasks(trx, [taskId], {
      lease_service_id: null,
      lease_expires_at: null,
      updated_at: now,
      status_changed_at: now,
      status_reason: null,
      status,
      last_error: errorText,
      restarts: status === 'waiting' ? task.restarts + 1 : task.restarts,
    });
    return { result: resultId, status, sha256: blob.sha256 };
  });
}

/**
 * Records a successful result under a lease checked (with its holder and scope) before the upload:
 * the same task and fencing token still live means the same claim, so only liveness is re-checked,
 * by the write itself.
 */
async function completeWith(
  store: Store,
  leased: TaskRow,
  leaseToken: number,
  blob: BlobInfo,
): Promise<LandedResult> {
  const done = {
    taskId: leased.id,
    leaseToken,
    resultId: `res-${randomBytes(16).toString('hex')}`,
    sha256: blob.sha256,
    sizeBytes: blob.sizeBytes,
    serviceId: leased.lease_service_id,
    now: iso(Date.now()),
    history: !store.skipHistoryWrites,
    events: !store.skipEventWrites,
  };
  const { backend } = store;
  const completed = await backend.atomic(store.db, (db) => backend.compute.completeLease(db, done));
  if (!completed) throw staleLease(leased.id);
  return { result: done.resultId, status: 'complete', sha256: blob.sha256 };
}

/**
 * Records a successful result whose bytes are in memory and already stored (in its row when
 * `storeInline`, else as the blob `blob`): the write that records it checks the lease (live, held
 * by the caller's service, in the caller's scopes), with no read before. A refused lease records
 * nothing (a blob written for it stays unreferenced, for objects gc) and is answered as
 * `requireLease` answers it.
 */
async function completeHeld(
  store: Store,
  principal: Principal,
  result: { taskId: string; leaseToken: number; blob: BlobInfo; body: Buffer; inlineMaxBytes: number },
): Promise<LandedResult> {
  const [lease] = await recordCompletions(store, principal, [result], result.inlineMaxBytes);
  if (lease?.completed) return { result: lease.resultId, status: 'complete', sha256: result.blob.sha256 };
  await requireLease(store, principal, result.taskId, result.leaseToken);
  throw staleLease(result.taskId);
}

/** A successful result ready to be recorded: its blob is durable, or its bytes go into its row. */
export interface HeldCompletion {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly blob: BlobInfo;
  /** The bytes; stored in the result's row when `storeInline` says so. */
  readonly body?: Buffer | undefined;
}

/**
 * Records successful results, each checked by the write itself (the lease live, held by the
 * caller's service, the task in the caller's scopes), in a fixed number of statements whatever
 * their number: one on PostgreSQL, four on SQLite. Given `trx` they land with that transaction,
 * else together on their own. Answers, per result in order, the result id it was given and whether
 * it landed.
 */
export async function recordCompletions(
  store: Store,
  principal: Principal,
  results: readonly HeldCompletion[],
  inlineMaxBytes: number,
  trx?: Kysely<Database>,
): Promise<{ resultId: string; completed: boolean }[]> {
  const leases = results.map((r) => ({
    taskId: r.taskId,
    leaseToken: r.leaseToken,
    resultId: `res-${randomBytes(16).toString('hex')}`,
    sha256: r.blob.sha256,
    sizeBytes: r.blob.sizeBytes,
    body: r.body !== undefined && storeInline(r.body, inlineMaxBytes) ? r.body : null,
  }));
  const holder = { identifier: principal.identifier, scopes: principal.scopes };
  const at = iso(Date.now());
  const history = !store.skipHistoryWrites;
  const { backend } = store;
  const events = !store.skipEventWrites;
  const complete = (db: Kysely<Database>) =>
    backend.compute.completeLeases(db, holder, leases, at, history, events);
  const completed = trx ? await complete(trx) : await backend.atomic(store.db, complete);
  return leases.map((l) => ({ resultId: l.resultId, completed: completed.has(l.taskId) }));
}

/** The result a lease already recorded, as far as answering a repeat of it needs. */
export interface RecordedResult {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly result: string;
  readonly outcome: 'ok' | 'failed';
  readonly sha256: string | null;
  readonly status: LandedResult['status'];
}

/**
 * The result the caller's lease already recorded, when there is one and the task is in the
 * caller's scopes: what a result sent again after a lost answer is compared with.
 */
export async function recordedResult(
  store: Store,
  principal: Principal,
  lease: LeaseRef,
): Promise<RecordedResult | undefined> {
  const result = await q.findResultOfLease(store.db, lease);
  if (!result || result.service_identifier !== principal.identifier) return undefined;
  const task = await findTask(store.db, lease.taskId);
  if (!task || !canAccess(principal, task.scope)) return undefined;
  const outcome = result.outcome === 'ok' ? 'ok' : 'failed';
  const status = outcome === 'ok' ? 'complete' : task.status === 'error' ? 'error' : 'waiting';
  return { ...lease, result: result.id, outcome, sha256: result.blob_sha256, status };
}

/**
 * The answer to a result sent again under a lease that already recorded one: the recorded answer
 * when outcome and bytes are the same (its first answer was lost), else `result_conflict` naming
 * what was recorded. A lease records one result; other bytes are never stored in its place.
 */
export function repeatAnswer(
  recorded: RecordedResult,
  repeat: { readonly outcome: 'ok' | 'failed'; readonly sha256: string },
): LandedResult {
  if (recorded.sha256 !== null && recorded.outcome === repeat.outcome && recorded.sha256 === repeat.sha256)
    return { result: recorded.result, status: recorded.status, sha256: recorded.sha256 };
  throw new AthanorError(
    'result_conflict',
    `task '${recorded.taskId}' already has a result under lease ${recorded.leaseToken}: ` +
      `${recorded.outcome} with sha256 ${recorded.sha256 ?? 'none'} (result '${recorded.result}'). ` +
      `This ${repeat.outcome} result with sha256 ${repeat.sha256} was not stored: a lease records one result`,
  );
}

/**
 * The restart patterns (of the task's hubs' policies) that the failure text matches. Matched
 * before the write transaction opens, on RE2's matcher thread with a deadline, so neither a lock
 * nor the event loop is held while patterns run.
 */
async function matchRestartPolicies(store: Store, taskId: string, errorText: string) {
  const rows = await q.policiesForTask(store.db, taskId);
  const patterns = rows.flatMap((row) => (row.pattern === null ? [] : [row.pattern]));
  // RE2 is linear in the text: the deadline grows with it (250 ms, plus 10 ms per 64 KiB).
  const timeoutMs = matchTimeoutMs + Math.ceil(Buffer.byteLength(errorText) / 65_536) * 10;
  return matchRestartPatterns(patterns, errorText, timeoutMs);
}

/**
 * A failure goes back to waiting on every hub whose network has a restart policy with retries
 * left whose pattern matched; it leaves the other hubs. It is `error` when no hub keeps it. A
 * policy added between the match and this transaction counts as not matching.
 */
async function applyRestartPolicies(
  trx: Store['db'],
  task: TaskRow,
  matchedPatterns: ReadonlySet<string>,
  now: string,
): Promise<'waiting' | 'error'> {
  const rows = await q.policiesForTask(trx, task.id);
  const keep = new Set<string>();
  let exhausted = false;
  for (const row of rows) {
    if (row.pattern === null || row.max_retries === null || !matchedPatterns.has(row.pattern)) continue;
    if (task.restarts < row.max_retries) keep.add(row.network_key);
    else exhausted = true;
  }
  const status = keep.size > 0 ? 'waiting' : 'error';
  // Its events name the hubs it was on, so they are written before it leaves them.
  if (status === 'error')
    await recordTaskEvents(
      trx,
      [task.id],
      exhausted ? ['task.error', 'task.retries_exhausted'] : ['task.error'],
      now,
    );
  const leave = [...new Set(rows.map((r) => r.network_key))].filter((k) => !keep.has(k));
  for (const networkKey of leave) await removeFromHubs(trx, [task.id], networkKey);
  return status;
}

async function readPrefix(objects: ObjectStore, sha256: string, maxBytes: number): Promise<string> {
  const stream = await objects.get(blobKey(sha256));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    chunks.push(buffer);
    size += buffer.length;
    if (size >= maxBytes) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}
