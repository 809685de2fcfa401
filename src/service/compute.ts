import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principal.js';
import { canAccess, visibleScopes } from '../auth/principal.js';
import { AthanorError, isAthanorError } from '../domain/errors.js';
import { parseScope } from '../domain/scope.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { blobKey, putBlob } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Store } from '../store/open-store.js';
import { closeAttempt, closeOpenAttempts } from '../store/queries/attempts.js';
import * as q from '../store/queries/compute.js';
import type { TransformationRow } from '../store/queries/networks.js';
import { findTransformations } from '../store/queries/networks.js';
import { findTask, removeFromHubs, type TaskRow, updateTasks } from '../store/queries/tasks.js';
import type { LeaseProgress } from '../store/queries/progress.js';
import { storeLeaseProgress } from '../store/queries/progress.js';
import type { LogAppend } from '../store/queries/attempt-log-chunks.js';
import { expireManagers, findManager } from '../store/queries/managers.js';
import { appendLiveLogs } from './attempt-logs.js';
import { matchRestartPatterns, matchTimeoutMs } from './restart-patterns.js';
import { transformationView } from './views.js';

/** Lease and registration timing; the defaults suit a service heartbeating every 20 s. */
export interface ComputeTimings {
  /** How long a claim lasts without a heartbeat; default 120 s. */
  readonly leaseTtlMs: number;
  /** How long a registration lasts without a heartbeat; default 300 s. */
  readonly registrationTtlMs: number;
}

export const defaultTimings: ComputeTimings = { leaseTtlMs: 120_000, registrationTtlMs: 300_000 };

const iso = (ms: number) => new Date(ms).toISOString();

async function requireService(
  store: Store,
  principal: Principal,
  serviceId: string,
  db = store.db,
): Promise<q.ComputeServiceRow> {
  const row = await q.findComputeService(db, serviceId);
  if (!row || row.identifier !== principal.identifier) {
    throw new AthanorError(
      'not_found',
      `no compute service '${serviceId}' registered by ${principal.identifier}`,
    );
  }
  if (row.state !== 'active') {
    throw new AthanorError(
      'stale_lease',
      `compute service '${serviceId}' is ${row.state}: register again (its tasks went back to waiting)`,
    );
  }
  return row;
}

export async function registerService(
  store: Store,
  principal: Principal,
  input: {
    name: string;
    hostname?: string | undefined;
    /** The manager that started it, and as which of its launches. */
    manager?: string | undefined;
    launch?: string | undefined;
  },
  timings: ComputeTimings = defaultTimings,
) {
  const now = Date.now();
  const id = `svc-${randomBytes(16).toString('hex')}`;
  await store.transaction(async (trx) => {
    if (input.manager) {
      const manager = await findManager(trx, input.manager);
      if (!manager || manager.identifier !== principal.identifier)
        throw new AthanorError(
          'not_found',
          `no compute manager '${input.manager}' registered by ${principal.identifier}`,
        );
    }
    await q.insertComputeService(trx, {
      id,
      identifier: principal.identifier,
      name: input.name,
      hostname: input.hostname ?? null,
      state: 'active',
      registered_at: iso(now),
      heartbeat_at: iso(now),
      expires_at: iso(now + timings.registrationTtlMs),
      manager_id: input.manager ?? null,
      launch_id: input.manager ? (input.launch ?? null) : null,
      drain: 0,
    });
  });
  return { id, leaseTtlMs: timings.leaseTtlMs, registrationTtlMs: timings.registrationTtlMs };
}

/** What a compute service says in its heartbeat. */
export interface ServiceHeartbeat {
  /**
   * Every lease the service holds. When given, only these are extended and the service's other
   * leases return to waiting (their results are refused afterwards); default: extend them all.
   */
  readonly leases?: readonly q.LeaseRef[] | undefined;
  /** Progress of held leases since the last heartbeat; stored on each lease still held. */
  readonly progress?: readonly LeaseProgress[] | undefined;
  /** What held leases' attempt logs gained since the last heartbeat; stored for those still held. */
  readonly logs?: readonly LogAppend[] | undefined;
}

/**
 * Keeps a registration alive and extends its unexpired leases: the listed ones, or all of them
 * when the heartbeat lists none. Answers the tasks it still holds.
 */
export async function heartbeat(
  store: Store,
  principal: Principal,
  serviceId: string,
  request: ServiceHeartbeat = {},
  timings: ComputeTimings = defaultTimings,
) {
  return store.transaction(async (trx) => {
    const service = await requireService(store, principal, serviceId, trx);
    const now = Date.now();
    await q.updateComputeService(trx, serviceId, {
      heartbeat_at: iso(now),
      expires_at: iso(now + timings.registrationTtlMs),
    });
    if (request.leases) await releaseUnlistedLeases(trx, serviceId, request.leases, iso(now));
    const leases = await q.extendServiceLeases(
      trx,
      serviceId,
      iso(now),
      iso(now + timings.leaseTtlMs),
      request.leases,
    );
    const held = new Set(leases.map((l) => `${l.id}:${l.lease_token}`));
    const reports = (request.progress ?? []).filter((p) => held.has(`${p.taskId}:${p.leaseToken}`));
    await storeLeaseProgress(trx, reports, iso(now));
    const appends = (request.logs ?? []).filter((l) => held.has(`${l.taskId}:${l.leaseToken}`));
    await appendLiveLogs(trx, appends, iso(now));
    return {
      leases: leases.map((l) => ({ task: l.id, leaseToken: l.lease_token })),
      leaseExpiresAt: iso(now + timings.leaseTtlMs),
      // Its manager asked it to scale in: finish what it holds, claim nothing more, exit.
      drain: service.drain === 1,
    };
  });
}

/**
 * Returns to waiting every task leased to the service that its heartbeat did not list: a claim
 * that committed while its answer was lost leaves a lease the service does not know it holds,
 * and would otherwise be extended by every heartbeat and never run. Returns the released tasks.
 */
export async function releaseUnlistedLeases(
  trx: Store['db'],
  serviceId: string,
  held: readonly q.LeaseRef[],
  now: string,
): Promise<string[]> {
  const released = await q.releaseLeases(trx, { serviceId, except: held }, now);
  await closeOpenAttempts(trx, released, {
    outcome: 'released',
    endedAt: now,
    reason: "its compute service's heartbeat did not list the lease",
  });
  return released;
}

export async function deregisterService(store: Store, principal: Principal, serviceId: string) {
  return store.transaction(async (trx) => {
    const row = await q.findComputeService(trx, serviceId);
    if (!row || row.identifier !== principal.identifier) {
      throw new AthanorError(
        'not_found',
        `no compute service '${serviceId}' registered by ${principal.identifier}`,
      );
    }
    const now = iso(Date.now());
    const released = await q.releaseLeases(trx, { serviceId }, now);
    await closeOpenAttempts(trx, released, {
      outcome: 'released',
      endedAt: now,
      reason: 'the compute service deregistered',
    });
    await q.updateComputeService(trx, serviceId, { state: 'deregistered' });
    return { released };
  });
}

export interface ClaimRequest {
  readonly count: number;
  readonly scopes?: readonly string[] | undefined;
  readonly protocols?: readonly string[] | undefined;
  /** Never claim tasks in these scopes (wildcards allowed). */
  readonly excludeScopes?: readonly string[] | undefined;
}

/** Weighted random order without replacement (Efraimidis–Spirakis keys). */
function weightedOrder<T extends { weight: number }>(items: readonly T[]): T[] {
  return items
    .map((item) => ({ item, key: -Math.log(1 - Math.random()) / item.weight }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.item);
}

/**
 * Per-store caches of the claim path. Each holds only what cannot make a claim wrong: a service's
 * identity and hostname never change (its state is checked inside every claim statement), a
 * transformation is immutable, and a hub list only orders the hubs tried first: every claim
 * statement re-checks its hub, and a claim that falls short reads the hub list afresh.
 */
interface ClaimCaches {
  readonly services: Map<string, q.Claimer>;
  readonly transformations: Map<string, TransformationRow>;
  readonly hubs: Map<string, { readonly readAt: number; hubs: { network_key: string; weight: number }[] }>;
}

/** How long a hub list orders claims before it is read again. */
export const hubListTtlMs = 1000;
const maxCacheEntries = 10_000;
const claimCaches = new WeakMap<Store, ClaimCaches>();

function cachesOf(store: Store): ClaimCaches {
  let caches = claimCaches.get(store);
  if (!caches) {
    caches = { services: new Map(), transformations: new Map(), hubs: new Map() };
    claimCaches.set(store, caches);
  }
  return caches;
}

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size >= maxCacheEntries) map.clear();
  map.set(key, value);
}

/** The service as a claim records it; read once, then from the cache (its state is checked per claim). */
async function claimerOf(store: Store, principal: Principal, serviceId: string): Promise<q.Claimer> {
  const { services } = cachesOf(store);
  const known = services.get(serviceId);
  if (known?.identifier === principal.identifier) return known;
  const row = await requireService(store, principal, serviceId);
  const claimer = { serviceId: row.id, identifier: row.identifier, hostname: row.hostname };
  remember(services, serviceId, claimer);
  return claimer;
}

/**
 * Claims up to `count` tasks: hubs of active networks in a weighted random order, and within a
 * hub by priority then task weight. Each claimed task gets a lease with a new fencing token and
 * an open attempt, written by the same statement (PostgreSQL) or transaction (SQLite).
 */
export async function claimTasks(
  store: Store,
  principal: Principal,
  serviceId: string,
  request: ClaimRequest,
  timings: ComputeTimings = defaultTimings,
) {
  const claimer = await claimerOf(store, principal, serviceId);
  const wanted = request.scopes?.length ? request.scopes.map(parseScope) : [undefined];
  const scopes = wanted.flatMap((s) => visibleScopes(principal, s));
  const filter = {
    scopes,
    protocols: request.protocols,
    excludeScopes: request.excludeScopes?.map(parseScope),
  };
  const claimed: TaskRow[] = [];
  const claimFrom = async (networkKey: string, count: number) => {
    const now = Date.now();
    const params = {
      ...filter,
      networkKey,
      claimer,
      count,
      now: iso(now),
      leaseExpiresAt: iso(now + timings.leaseTtlMs),
      history: !store.skipHistoryWrites,
    };
    const rows =
      store.backend.name === 'postgres'
        ? await q.claimFromHub(store.db, store.backend, params)
        : await store.transaction((trx) => q.claimFromHub(trx, store.backend, params));
    claimed.push(...rows);
    return rows.length;
  };

  // First the hubs a recent claim with this filter found claimable: one statement per claim while
  // the first hub tried has work. A hub that answers nothing leaves the list.
  const { hubs: hubLists } = cachesOf(store);
  const filterKey = JSON.stringify([scopes, request.protocols ?? [], request.excludeScopes ?? []]);
  const cached = hubLists.get(filterKey);
  const tried = new Set<string>();
  if (cached && Date.now() - cached.readAt < hubListTtlMs) {
    for (const hub of weightedOrder(cached.hubs)) {
      if (claimed.length >= request.count) break;
      tried.add(hub.network_key);
      if ((await claimFrom(hub.network_key, request.count - claimed.length)) === 0)
        cached.hubs = cached.hubs.filter((h) => h.network_key !== hub.network_key);
    }
    if (claimed.length >= request.count) return describeClaims(store, claimed);
  }
  // Nothing (or too little) from the cached hubs: the service may be gone, else read which hubs
  // are claimable now.
  if (claimed.length === 0) await requireService(store, principal, serviceId);
  const fresh = await q.claimableHubs(store.db, filter);
  remember(hubLists, filterKey, { readAt: Date.now(), hubs: fresh });
  // On PostgreSQL a claim statement reads its candidates from a snapshot: a task another claimer
  // took after that snapshot is skipped, so the statement can answer fewer tasks than the hub
  // still holds. A fresh statement sees that claim and picks the next task, so a hub that came up
  // short is claimed from again, a bounded number of times. SQLite serializes claims: no retry.
  const attemptsPerHub = store.backend.name === 'postgres' ? 8 : 1;
  for (const hub of weightedOrder(fresh)) {
    for (let attempt = 0; attempt < attemptsPerHub && claimed.length < request.count; attempt++) {
      if (attempt === 0 && tried.has(hub.network_key)) continue;
      const wantedFromHub = request.count - claimed.length;
      if ((await claimFrom(hub.network_key, wantedFromHub)) === wantedFromHub) break;
    }
  }
  return describeClaims(store, claimed);
}

/** What a compute service needs to run claimed tasks; their transformations read in one query. */
async function describeClaims(store: Store, tasks: readonly TaskRow[]) {
  const cache = cachesOf(store).transformations;
  const transformations = new Map<string, TransformationRow>();
  const missing = new Set<string>();
  for (const task of tasks) {
    const known = cache.get(task.transformation_key);
    if (known) transformations.set(task.transformation_key, known);
    else missing.add(task.transformation_key);
  }
  if (missing.size > 0) {
    for (const [key, row] of await findTransformations(store.db, [...missing])) {
      transformations.set(key, row);
      remember(cache, key, row);
    }
  }
  return Promise.all(
    tasks.map((task) => describeClaim(store, task, transformations.get(task.transformation_key))),
  );
}

async function describeClaim(store: Store, task: TaskRow, transformation: TransformationRow | undefined) {
  if (!transformation) throw new AthanorError('internal', `task ${task.id} has no transformation`);
  const extended = task.extends_task_id ? await q.latestOkResult(store.db, task.extends_task_id) : undefined;
  return {
    task: task.id,
    scope: task.scope,
    leaseToken: task.lease_token,
    leaseExpiresAt: task.lease_expires_at,
    attempt: task.attempts,
    transformation: transformationView(transformation),
    extends: task.extends_task_id
      ? { task: task.extends_task_id, result: extended?.id ?? null, sha256: extended?.blob_sha256 ?? null }
      : null,
  };
}

export type Claim = Awaited<ReturnType<typeof describeClaim>>;

/** The claim of a task whose lease the caller holds (for services that fetch it again). */
export async function getClaim(store: Store, principal: Principal, taskId: string, leaseToken: number) {
  const task = await requireLease(store, principal, taskId, leaseToken);
  const [claim] = await describeClaims(store, [task]);
  return claim!;
}

export function staleLease(taskId: string): AthanorError {
  return new AthanorError(
    'stale_lease',
    `the lease on task '${taskId}' is not yours any more (expired, released or claimed again): drop the task`,
  );
}

/**
 * The task whose live lease `leaseToken` is, held by the caller; else 404 (not in the caller's
 * scopes) or 409 (stale or foreign). Given a transaction, the task stays locked until it ends.
 */
async function requireLease(
  store: Store,
  principal: Principal,
  taskId: string,
  leaseToken: number,
  trx?: Store['db'],
): Promise<TaskRow> {
  const db = trx ?? store.db;
  const leased = await q.findLiveLease(db, {
    taskId,
    leaseToken,
    now: iso(Date.now()),
    lock: trx !== undefined,
  });
  if (leased && canAccess(principal, leased.scope) && leased.service_identifier === principal.identifier) {
    const { service_identifier: _, ...task } = leased;
    return task;
  }
  const task = await findTask(db, taskId);
  if (!task || !canAccess(principal, task.scope))
    throw new AthanorError('not_found', `no task '${taskId}' in your scopes`);
  throw staleLease(taskId);
}

/** Extends one lease; a stale or foreign token is refused (409) and changes nothing. */
export async function extendLease(
  store: Store,
  principal: Principal,
  taskId: string,
  leaseToken: number,
  timings: ComputeTimings = defaultTimings,
) {
  return store.transaction(async (trx) => {
    await requireLease(store, principal, taskId, leaseToken, trx);
    const leaseExpiresAt = iso(Date.now() + timings.leaseTtlMs);
    await updateTasks(trx, [taskId], { lease_expires_at: leaseExpiresAt });
    return { task: taskId, leaseToken, leaseExpiresAt };
  });
}

/** Gives a task back without penalty: it returns to waiting and its attempt is not counted. */
export async function releaseLease(store: Store, principal: Principal, taskId: string, leaseToken: number) {
  return store.transaction(async (trx) => {
    const task = await requireLease(store, principal, taskId, leaseToken, trx);
    const now = iso(Date.now());
    await updateTasks(trx, [taskId], {
      status: 'waiting',
      lease_service_id: null,
      lease_expires_at: null,
      attempts: Math.max(0, task.attempts - 1),
      updated_at: now,
      status_changed_at: now,
      status_reason: null,
    });
    await closeAttempt(trx, taskId, leaseToken, { outcome: 'released', endedAt: now });
    return { task: taskId, status: 'waiting' as const };
  });
}

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

/**
 * Stores a result: the body streams into the object store first, then one transaction checks
 * the lease and records it. A stale or foreign lease is refused (409) and leaves no status
 * change and no result row; a streamed body is not stored for a lease found stale before its
 * upload, a success already in memory is stored and then checked by the write (its blob is left
 * unreferenced when refused). The same result sent again under the lease that already submitted
 * it (its answer was lost) gets the stored result's answer.
 */
export async function submitResult(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  submission: ResultSubmission,
) {
  try {
    return await recordResult(store, objects, principal, submission);
  } catch (error) {
    const repeated = isAthanorError(error) && error.code === 'stale_lease';
    const accepted = repeated ? await acceptedResult(store, principal, submission) : undefined;
    if (accepted) return accepted;
    throw error;
  }
}

async function recordResult(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  submission: ResultSubmission,
) {
  const { taskId, leaseToken } = submission;
  if (submission.outcome === 'ok' && Buffer.isBuffer(submission.body))
    return completeHeld(store, objects, principal, { taskId, leaseToken, body: submission.body });
  const leased = await requireLease(store, principal, taskId, leaseToken);
  const blob: BlobInfo = await putBlob(objects, submission.body);
  if (submission.outcome === 'ok') return completeWith(store, leased, leaseToken, blob);
  let errorText: string | null = null;
  let restartMatches: ReadonlySet<string> = new Set();
  if (submission.outcome === 'failed') {
    // Policies see the whole failure text (message and traceback), not the head kept on the task.
    const fullText = await readPrefix(objects, blob.sha256, maxRestartMatchBytes);
    errorText = Buffer.from(fullText).subarray(0, maxErrorTextBytes).toString('utf8');
    restartMatches = await matchRestartPolicies(store, taskId, fullText);
  }
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
    });
    await closeAttempt(trx, taskId, leaseToken, {
      outcome: submission.outcome,
      endedAt: now,
      resultId,
    });
    const lease = {
      lease_service_id: null,
      lease_expires_at: null,
      updated_at: now,
      status_changed_at: now,
      status_reason: null,
    };
    const status = await applyRestartPolicies(trx, task, restartMatches);
    await updateTasks(trx, [taskId], {
      ...lease,
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
async function completeWith(store: Store, leased: TaskRow, leaseToken: number, blob: BlobInfo) {
  const done = {
    taskId: leased.id,
    leaseToken,
    resultId: `res-${randomBytes(16).toString('hex')}`,
    sha256: blob.sha256,
    sizeBytes: blob.sizeBytes,
    serviceId: leased.lease_service_id,
    now: iso(Date.now()),
    history: !store.skipHistoryWrites,
  };
  const completed =
    store.backend.name === 'postgres'
      ? await q.completeLease(store.db, store.backend, done)
      : await store.transaction((trx) => q.completeLease(trx, store.backend, done));
  if (!completed) throw staleLease(leased.id);
  return { result: done.resultId, status: 'complete' as const, sha256: blob.sha256 };
}

/**
 * Records a successful result whose bytes are already in memory: its blob is written, then the
 * write that records it checks the lease (live, held by the caller's service, in the caller's
 * scopes), with no read before. A refused lease leaves its blob unreferenced (for objects gc) and
 * is answered as `requireLease` answers it.
 */
async function completeHeld(
  store: Store,
  objects: ObjectStore,
  principal: Principal,
  result: { taskId: string; leaseToken: number; body: Buffer },
) {
  const blob = await putBlob(objects, result.body);
  const [lease] = await recordCompletions(store, principal, [{ ...result, blob }]);
  if (lease?.completed) return { result: lease.resultId, status: 'complete' as const, sha256: blob.sha256 };
  await requireLease(store, principal, result.taskId, result.leaseToken);
  throw staleLease(result.taskId);
}

/**
 * Records successful results whose blobs are stored, each checked by the write itself (the lease
 * live, held by the caller's service, the task in the caller's scopes); one statement for all on
 * PostgreSQL, one transaction on SQLite. Answers, per result in order, the result id it was given
 * and whether it landed.
 */
export async function recordCompletions(
  store: Store,
  principal: Principal,
  results: readonly { taskId: string; leaseToken: number; blob: BlobInfo }[],
): Promise<{ resultId: string; completed: boolean }[]> {
  const leases = results.map((r) => ({
    taskId: r.taskId,
    leaseToken: r.leaseToken,
    resultId: `res-${randomBytes(16).toString('hex')}`,
    sha256: r.blob.sha256,
    sizeBytes: r.blob.sizeBytes,
  }));
  const holder = { identifier: principal.identifier, scopes: principal.scopes };
  const at = iso(Date.now());
  const history = !store.skipHistoryWrites;
  const completed =
    store.backend.name === 'postgres'
      ? await q.completeLeases(store.db, store.backend, holder, leases, at, history)
      : await store.transaction((trx) => q.completeLeases(trx, store.backend, holder, leases, at, history));
  return leases.map((l) => ({ resultId: l.resultId, completed: completed.has(l.taskId) }));
}

/**
 * The answer to a result sent again with the lease that already submitted it (its first answer
 * was lost): the stored result, recorded once. Another outcome under that lease is not a repeat.
 */
export async function acceptedResult(
  store: Store,
  principal: Principal,
  submission: Pick<ResultSubmission, 'taskId' | 'leaseToken' | 'outcome'>,
) {
  const { taskId, leaseToken } = submission;
  const result = await q.findResultOfLease(store.db, { taskId, leaseToken });
  if (!result || result.service_identifier !== principal.identifier) return undefined;
  if (result.outcome !== submission.outcome || result.blob_sha256 === null) return undefined;
  const task = await findTask(store.db, taskId);
  if (!task || !canAccess(principal, task.scope)) return undefined;
  const status = result.outcome === 'ok' ? 'complete' : task.status === 'error' ? 'error' : 'waiting';
  return {
    result: result.id,
    status: status as 'complete' | 'waiting' | 'error',
    sha256: result.blob_sha256,
  };
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
): Promise<'waiting' | 'error'> {
  const rows = await q.policiesForTask(trx, task.id);
  const keep = new Set<string>();
  for (const row of rows) {
    if (row.pattern === null || row.max_retries === null) continue;
    if (task.restarts < row.max_retries && matchedPatterns.has(row.pattern)) keep.add(row.network_key);
  }
  const leave = [...new Set(rows.map((r) => r.network_key))].filter((k) => !keep.has(k));
  for (const networkKey of leave) await removeFromHubs(trx, [task.id], networkKey);
  return keep.size > 0 ? 'waiting' : 'error';
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

/**
 * One sweep: expired registrations become `expired`, and every running task whose lease ran out
 * or whose service expired returns to `waiting`. Only one replica sweeps at a time.
 */
export async function sweep(store: Store, now = Date.now()) {
  return store.transaction(async (trx) => {
    if (!(await store.backend.tryLeaderLock(trx, 'sweeper')))
      return { leader: false, expiredLeases: 0, expiredServices: 0, expiredManagers: 0 };
    const at = iso(now);
    const services = await q.expireServices(trx, at);
    const managers = await expireManagers(trx, at);
    let released = 0;
    for (const serviceId of services) {
      const tasks = await q.releaseLeases(trx, { serviceId }, at);
      await closeOpenAttempts(trx, tasks, {
        outcome: 'expired',
        endedAt: at,
        reason: 'its compute service stopped heartbeating',
      });
      released += tasks.length;
    }
    const expired = await q.releaseLeases(trx, { expiredBefore: at }, at);
    await closeOpenAttempts(trx, expired, {
      outcome: 'expired',
      endedAt: at,
      reason: 'the lease ran out without a heartbeat',
    });
    released += expired.length;
    return {
      leader: true,
      expiredLeases: released,
      expiredServices: services.length,
      expiredManagers: managers.length,
    };
  });
}
