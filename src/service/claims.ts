import type { Kysely } from 'kysely';
import type { Principal } from '../auth/principal.js';
import { visibleScopes } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import { parseScope } from '../domain/scope.js';
import type { Claimer } from '../store/compute-statements.js';
import type { Store } from '../store/open-store.js';
import * as q from '../store/queries/compute.js';
import type { TransformationRow } from '../store/queries/networks.js';
import { findTransformations } from '../store/queries/networks.js';
import type { TaskRow } from '../store/queries/tasks.js';
import type { Database } from '../store/schema.js';
import type { ComputeTimings } from './compute-services.js';
import { defaultTimings, iso, requireService } from './compute-services.js';
import { requireLease } from './leases.js';
import { transformationView } from './views.js';

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
  readonly services: Map<string, Claimer>;
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
async function claimerOf(
  store: Store,
  principal: Principal,
  serviceId: string,
  db: Kysely<Database>,
): Promise<Claimer> {
  const { services } = cachesOf(store);
  const known = services.get(serviceId);
  if (known?.identifier === principal.identifier) return known;
  const row = await requireService(store, principal, serviceId, db);
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
  return describeClaims(store, await claimTaskRows(store, principal, serviceId, request, timings));
}

/**
 * `claimTasks` without the description of what it claimed: the claimed tasks' rows. Given `trx`
 * (a write transaction), every statement runs in it and lands with the transaction; otherwise
 * each claim statement lands on its own.
 */
export async function claimTaskRows(
  store: Store,
  principal: Principal,
  serviceId: string,
  request: ClaimRequest,
  timings: ComputeTimings = defaultTimings,
  trx?: Kysely<Database>,
): Promise<TaskRow[]> {
  const db = trx ?? store.db;
  const { backend } = store;
  const claimer = await claimerOf(store, principal, serviceId, db);
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
    const claim = {
      ...filter,
      networkKey,
      claimer,
      count,
      now: iso(now),
      leaseExpiresAt: iso(now + timings.leaseTtlMs),
      history: !store.skipHistoryWrites,
    };
    const rows = trx
      ? await backend.compute.claimFromHub(trx, claim)
      : await backend.atomic(store.db, (atomic) => backend.compute.claimFromHub(atomic, claim));
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
    if (claimed.length >= request.count) return claimed;
  }
  // Nothing (or too little) from the cached hubs: the service may be gone, else read which hubs
  // are claimable now.
  if (claimed.length === 0) await requireService(store, principal, serviceId, db);
  const fresh = await q.claimableHubs(db, filter);
  remember(hubLists, filterKey, { readAt: Date.now(), hubs: fresh });
  // A hub that came up short is claimed from again as often as the backend says a fresh statement
  // may find more (see Backend.claimStatementsPerHub).
  for (const hub of weightedOrder(fresh)) {
    for (
      let attempt = 0;
      attempt < backend.claimStatementsPerHub && claimed.length < request.count;
      attempt++
    ) {
      if (attempt === 0 && tried.has(hub.network_key)) continue;
      const wantedFromHub = request.count - claimed.length;
      if ((await claimFrom(hub.network_key, wantedFromHub)) === wantedFromHub) break;
    }
  }
  return claimed;
}

/** What a compute service needs to run claimed tasks; their transformations read in one query. */
export async function describeClaims(store: Store, tasks: readonly TaskRow[]) {
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
