import { Transform, type Readable } from 'node:stream';
import type { Principal } from '../auth/principal.js';
import { canAccess } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { getBlob, putBlob } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Store } from '../store/open-store.js';
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
  const attached = await store.transaction((trx) =>
    q.attachAttemptLog(trx, taskId, leaseToken, { sha256: blob.sha256, sizeBytes: blob.sizeBytes }),
  );
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

/** The log of a task's `number`th attempt (1 for the first), for a user who may see the task. */
export async function openAttemptLog(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  taskId: string,
  number: number,
): Promise<{ stream: Readable; sizeBytes: number; sha256: string }> {
  const task = await findTask(store.db, taskId);
  if (!task || !canAccess(principal, task.scope)) throw notFound('task', taskId);
  const attempt = await q.findAttemptByNumber(store.db, taskId, number);
  if (!attempt) throw new AthanorError('not_found', `task '${taskId}' has no attempt ${number}`);
  if (attempt.log_sha256 === null) {
    throw new AthanorError(
      'not_found',
      attempt.ended_at === null
        ? `attempt ${number} of task '${taskId}' is still running: its log is uploaded when it ends (use --follow)`
        : `attempt ${number} of task '${taskId}' has no log: its compute service uploaded none`,
    );
  }
  return {
    stream: await getBlob(objects, attempt.log_sha256),
    sizeBytes: Number(attempt.log_size_bytes ?? 0),
    sha256: attempt.log_sha256,
  };
}
