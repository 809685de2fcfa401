import type { Readable } from 'node:stream';
import type { ResultRef } from './result-body.js';
import type { Principal } from '../auth/principal.js';
import { canAccess, visibleScopes } from '../auth/principal.js';
import { summarizeErrorText } from '../domain/error-text.js';
import type { AttemptView, FailureView, NetworkResultView, TaskDetail } from '../domain/api-views.js';
import { AthanorError } from '../domain/errors.js';

export type { AttemptView, FailureView, NetworkResultView, TaskDetail };
import type { Store } from '../store/open-store.js';
import type { AttemptRow } from '../store/queries/attempts.js';
import * as q from '../store/queries/attempts.js';
import type { NetworkResultRow } from '../store/queries/network-results.js';
import { networkResults } from '../store/queries/network-results.js';
import { findTask, findTasks, type TaskRow } from '../store/queries/tasks.js';
import type { Page } from './networks.js';
import { notFound, parseQueryScope, requireNetwork } from './networks.js';
import { progressView } from './views.js';
import type { ResultOutcome } from '../domain/outcomes.js';

/**
 * A user's view of an attempt, `number` being its place among the task's attempts (1, 2, …). The
 * lease token stays out: with the compute identity's credentials it is what submits a result.
 */
export function attemptView(row: AttemptRow, number: number): AttemptView {
  return {
    task: row.task_id,
    attempt: number,
    computeIdentity: row.compute_identity,
    computeService: row.compute_service_id,
    hostname: row.hostname,
    claimedAt: row.claimed_at,
    endedAt: row.ended_at,
    outcome: row.outcome,
    result: row.result_id,
    reason: row.reason,
    logSizeBytes: row.log_size_bytes === null ? null : Number(row.log_size_bytes),
  };
}

const numbered = (rows: readonly AttemptRow[]) => rows.map((row, i) => attemptView(row, i + 1));

export async function listTaskAttempts(
  store: Store,
  principal: Principal,
  taskId: string,
): Promise<AttemptView[]> {
  const task = await findTask(store.db, taskId);
  if (!task || !canAccess(principal, task.scope)) throw notFound('task', taskId);
  return numbered(await q.listAttempts(store.db, taskId));
}

export const maxDetailsIds = 10_000;
/** How much of a task's last error `details` answers (the full text is its result's blob). */
export const errorHeadChars = 1000;

function taskDetail(task: TaskRow, attempts: readonly AttemptRow[]): TaskDetail {
  const open = attempts.find((a) => a.ended_at === null && a.lease_token === task.lease_token);
  const last = [...attempts].reverse().find((a) => a.ended_at !== null);
  return {
    status: task.status,
    statusChangedAt: task.status_changed_at ?? task.updated_at,
    reason: task.status_reason,
    attempts: numbered(attempts),
    leaseHolder:
      task.status === 'running' && open
        ? {
            computeIdentity: open.compute_identity,
            computeService: open.compute_service_id,
            hostname: open.hostname,
            claimedAt: open.claimed_at,
            leaseExpiresAt: task.lease_expires_at,
          }
        : null,
    lastOutcome: last?.outcome ?? null,
    lastErrorHead: task.last_error === null ? null : task.last_error.slice(0, errorHeadChars),
    progress: progressView(task),
  };
}

/** Status, attempts, lease holder and last failure of many tasks at once. */
export async function taskDetails(
  store: Store,
  principal: Principal,
  taskIds: readonly string[],
): Promise<{ task: string; result: TaskDetail | null; error?: string }[]> {
  if (taskIds.length > maxDetailsIds) {
    throw new AthanorError('validation_failed', `body/tasks may hold at most ${maxDetailsIds} ids`);
  }
  const rows = await findTasks(store.db, taskIds);
  for (const [id, row] of rows) if (!canAccess(principal, row.scope)) rows.delete(id);
  const attempts = await q.attemptsOfTasks(store.db, [...rows.keys()]);
  return taskIds.map((id) => {
    const row = rows.get(id);
    return row
      ? { task: id, result: taskDetail(row, attempts.get(id) ?? []) }
      : { task: id, result: null, error: 'not found in your scopes' };
  });
}

/** Failures one page holds at most; a page also stops once its tracebacks reach `maxFailurePageBytes`. */
export const maxFailuresPerPage = 1000;
export const maxFailurePageBytes = 16 * 1024 * 1024;

async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Failed attempts, each with its error class, message and full text, paged by
 * `after` = `<task>:<claim>` of the last item of the previous page.
 */
export async function listFailures(
  store: Store,
  principal: Principal,
  openResult: ((result: ResultRef) => Promise<Readable>) | undefined,
  filter: Page & { network?: string | undefined; scope?: string | undefined },
): Promise<FailureView[]> {
  if (filter.network !== undefined) await requireNetwork(store, principal, filter.network);
  const scopes = visibleScopes(principal, parseQueryScope(filter.scope));
  let after: { taskId: string; leaseToken: number } | undefined;
  if (filter.after !== undefined) {
    const match = /^(.+):(\d+)$/.exec(filter.after);
    if (!match) {
      throw new AthanorError(
        'validation_failed',
        `querystring/after must be '<task>:<attempt>' as in the last failure of the previous page, got '${filter.after}'`,
      );
    }
    const taskId = match[1] as string;
    const attempt = await q.findAttemptByNumber(store.db, taskId, Number(match[2]));
    // A cursor past a task's last attempt continues with the next task.
    after = { taskId, leaseToken: attempt?.lease_token ?? Number.MAX_SAFE_INTEGER };
  }
  const rows = await q.listFailures(store.db, {
    networkKey: filter.network,
    scopes,
    limit: Math.min(Math.max(filter.limit ?? 100, 1), maxFailuresPerPage),
    after,
  });
  const failures: FailureView[] = [];
  let bytes = 0;
  for (const row of rows) {
    const traceback =
      row.blob_sha256 && row.result_id && openResult
        ? await readText(await openResult({ id: row.result_id, sha256: row.blob_sha256 }))
        : (row.error ?? '');
    failures.push({ ...attemptView(row, Number(row.number)), ...summarizeErrorText(traceback), traceback });
    bytes += Buffer.byteLength(traceback);
    if (bytes >= maxFailurePageBytes) break;
  }
  return failures;
}

/** Network results one page holds at most. */
export const maxNetworkResultsPerPage = 10_000;

/**
 * A network's results, one per transformation: its newest `ok` result, else its newest failure
 * (with `outcome`, the newest of that outcome). Paged by transformation key.
 */
export async function listNetworkResults(
  store: Store,
  principal: Principal,
  networkKey: string,
  filter: Page & { outcome?: ResultOutcome | undefined },
) {
  await requireNetwork(store, principal, networkKey);
  const rows = await networkResults(store.db, {
    networkKey,
    outcome: filter.outcome,
    limit: Math.min(Math.max(filter.limit ?? 1000, 1), maxNetworkResultsPerPage),
    after: filter.after,
  });
  const chosen = new Map<string, NetworkResultRow>();
  for (const row of rows) {
    const held = chosen.get(row.transformation_key);
    if (!held || (held.outcome !== 'ok' && row.outcome === 'ok')) chosen.set(row.transformation_key, row);
  }
  return [...chosen.values()].map((r) => ({
    transformation: r.transformation_key,
    name: r.transformation_name,
    task: r.task_id,
    result: r.id,
    outcome: r.outcome,
    sha256: r.blob_sha256,
    sizeBytes: r.size_bytes === null ? null : Number(r.size_bytes),
    createdAt: r.created_at,
  }));
}
