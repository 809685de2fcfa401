import { Readable, Transform } from 'node:stream';
import type { Principal } from '../auth/principal.js';
import { canAccess } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { getBlob, putBlob } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Store } from '../store/open-store.js';
import * as chunks from '../store/queries/attempt-log-chunks.js';
import type { LogAppend } from '../store/queries/attempt-log-chunks.js';
import * as q from '../store/queries/attempts.js';
import { findTask } from '../store/queries/tasks.js';
import { notFound } from './networks.js';

/**
 * The most one attempt's log may hold on the server: the compute service's own cap (16 MiB by
 * default, configurable) plus room for its truncation marker, up to this hard limit.
 */
export const maxStoredLogBytes = 256 * 1024 * 1024;

/** Passes bytes through and fails once more than `maxBytes` went by. */
function capped(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > maxBytes) {
        done(
          new AthanorError(
            'body_too_large',
            `an attempt log may hold at most ${maxBytes} bytes: cut it on the compute service (--max-log-bytes)`,
          ),
        );
      } else done(null, chunk);
    },
  });
}

/**
 * Attaches the log of an attempt, once. Only the compute identity that held the attempt may, and
 * it may after the attempt ended (a failed, released or interrupted attempt has a log too). The
 * same log sent again is answered as stored; a different one is refused.
 */
export async function attachAttemptLog(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  input: { taskId: string; leaseToken: number; body: Readable },
): Promise<{ task: string; sizeBytes: number; sha256: string }> {
  const { taskId, leaseToken } = input;
  const attempt = await ownAttempt(store, principal, taskId, leaseToken);
  if (attempt.log_sha256 !== null) {
    input.body.resume();
    throw alreadyAttached(taskId);
  }
  const limit = capped(maxStoredLogBytes);
  input.body.on('error', (error) => limit.destroy(error));
  const blob: BlobInfo = await putBlob(objects, input.body.pipe(limit));
  const attached = await store.transaction(async (trx) => {
    const done = await q.attachAttemptLog(trx, taskId, leaseToken, {
      sha256: blob.sha256,
      sizeBytes: blob.sizeBytes,
    });
    // The whole log replaces what the attempt appended while it ran.
    if (done) await chunks.deleteLogChunks(trx, { taskId, leaseToken });
    return done;
  });
  if (!attached) {
    const now = await ownAttempt(store, principal, taskId, leaseToken);
    if (now.log_sha256 !== blob.sha256) throw alreadyAttached(taskId);
  }
  return { task: taskId, sizeBytes: blob.sizeBytes, sha256: blob.sha256 };
}

function alreadyAttached(taskId: string): AthanorError {
  return new AthanorError(
    'conflict',
    `this attempt of task '${taskId}' already has its log: an attempt's log is written once`,
  );
}

async function ownAttempt(store: Store, principal: Principal, taskId: string, leaseToken: number) {
  const task = await findTask(store.db, taskId);
  if (!task || !canAccess(principal, task.scope)) throw notFound('task', taskId);
  const attempt = (await q.listAttempts(store.db, taskId)).find((a) => a.lease_token === leaseToken);
  if (!attempt || attempt.compute_identity !== principal.identifier) {
    throw new AthanorError(
      'stale_lease',
      `lease ${leaseToken} of task '${taskId}' was never yours: attach a log only to your own attempts`,
    );
  }
  return attempt;
}

/**
 * Stores what running attempts' logs gained, on the heartbeat of the leases they run under (the
 * caller passes only live leases: an append under a stale token is dropped like its heartbeat).
 * An append is placed at its byte offset: what the server already holds (a heartbeat sent again
 * after its answer was lost) is skipped, so no byte is stored twice. One insert per heartbeat.
 */
export async function appendLiveLogs(
  db: Store['db'],
  appends: readonly LogAppend[],
  now: string,
): Promise<void> {
  const wanted = appends.filter((a) => a.text !== '');
  if (wanted.length === 0) return;
  const ends = await chunks.liveLogEnds(db, wanted);
  const fresh: LogAppend[] = [];
  for (const append of wanted) {
    const end = ends.get(`${append.taskId}:${append.leaseToken}`) ?? 0;
    const bytes = Buffer.from(append.text);
    // A gap (an offset past the end) cannot be filled later: the uploaded log will hold it.
    if (append.offsetBytes > end || append.offsetBytes + bytes.length <= end) continue;
    const rest = bytes.subarray(end - append.offsetBytes);
    if (end + rest.length > maxStoredLogBytes) continue;
    fresh.push({ ...append, offsetBytes: end, text: rest.toString('utf8') });
  }
  await chunks.insertLogChunks(db, fresh, now);
}

/** Chunks read from the database per query while a live log is streamed. */
const chunksPerPage = 64;

/** The live log of an attempt from `fromBytes` on, read page by page as it is streamed. */
function liveLog(store: Store, attempt: { taskId: string; leaseToken: number }, fromBytes: number): Readable {
  async function* pages() {
    for (let at = fromBytes; ;) {
      const page = await chunks.readLogChunks(store.db, attempt, at, chunksPerPage);
      for (const chunk of page) {
        const bytes = Buffer.from(chunk.text);
        yield bytes.subarray(Math.max(0, at - Number(chunk.offset_bytes)));
        at = Number(chunk.offset_bytes) + bytes.length;
      }
      if (page.length < chunksPerPage) return;
    }
  }
  return Readable.from(pages());
}

/** Drops the first `bytes` bytes of a stream. */
function skipBytes(bytes: number): Transform {
  let left = bytes;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return done();
      }
      const rest = chunk.subarray(left);
      left = 0;
      done(null, rest);
    },
  });
}

/** An attempt's log as a reader gets it. */
export interface AttemptLog {
  readonly stream: Readable;
  /** The bytes streamed; unknown (undefined) for a live log, which may grow while it is read. */
  readonly sizeBytes: number | undefined;
  /** The uploaded log's sha256; undefined for a live log. */
  readonly sha256: string | undefined;
  /**
   * Whether this is the whole log (uploaded when the attempt ended); otherwise what the attempt
   * appended so far while it ran, and more may follow.
   */
  readonly complete: boolean;
  /** Whether the attempt is still running. */
  readonly running: boolean;
}

/**
 * The log of a task's `number`th attempt (1 for the first), for a user who may see the task, from
 * byte `fromBytes` on: the uploaded log once the attempt ended and its log arrived, else what the
 * attempt appended while it ran (possibly nothing yet).
 */
export async function openAttemptLog(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  taskId: string,
  number: number,
  fromBytes = 0,
): Promise<AttemptLog> {
  const task = await findTask(store.db, taskId);
  if (!task || !canAccess(principal, task.scope)) throw notFound('task', taskId);
  const attempt = await q.findAttemptByNumber(store.db, taskId, number);
  if (!attempt) throw new AthanorError('not_found', `task '${taskId}' has no attempt ${number}`);
  const running = attempt.ended_at === null;
  if (attempt.log_sha256 !== null) {
    const sizeBytes = Number(attempt.log_size_bytes ?? 0);
    const blob = await getBlob(objects, attempt.log_sha256);
    const skip = Math.min(fromBytes, sizeBytes);
    return {
      stream: skip === 0 ? blob : blob.pipe(skipBytes(skip)),
      sizeBytes: sizeBytes - skip,
      sha256: attempt.log_sha256,
      complete: true,
      running,
    };
  }
  const lease = { taskId, leaseToken: attempt.lease_token };
  if (!running && (await chunks.readLogChunks(store.db, lease, 0, 1)).length === 0) {
    // A compute service sends a log only when the attempt wrote a line: after a result that means
    // none was written; otherwise the service may have stopped before it could send one.
    const why =
      attempt.outcome === 'ok' || attempt.outcome === 'failed'
        ? 'it wrote no log lines'
        : 'its compute service sent none before it stopped';
    throw new AthanorError(
      'not_found',
      `attempt ${number} of task '${taskId}' (${attempt.outcome ?? 'ended'}) has no log: ${why}`,
      { details: { task: taskId, attempt: number, outcome: attempt.outcome } },
    );
  }
  return {
    stream: liveLog(store, lease, fromBytes),
    sizeBytes: undefined,
    sha256: undefined,
    complete: false,
    running,
  };
}
