import { recordNetworkEvent } from './events/record-events.js';
import { createHash } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import type { Principal } from '../auth/principal.js';
import { canAccess, principalName, requireScope, visibleScopes } from '../auth/principal.js';
import { canonicalJson } from '../domain/canonical-json.js';
import { AthanorError } from '../domain/errors.js';
import type { TransformationContent } from '../domain/keys.js';
import { networkKeyText, transformationKey } from '../domain/keys.js';
import type { Scope } from '../domain/scope.js';
import { formatScope, parseScope, parseSpecificScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import { runningTasksOfNetwork } from '../store/queries/attempts.js';
import * as q from '../store/queries/networks.js';
import { checkNetworksQuota } from './identity-quotas.js';
import { revokeOrphanedLeases } from './revoke-leases.js';
import type { NetworkState, TaskStatus } from '../store/schema.js';
import type { NetworkView, TransformationView } from './views.js';
import { networkView, transformationView } from './views.js';
import { checkRestartPatterns } from './restart-patterns.js';

export const maxListLimit = 10_000;

export interface Page {
  readonly limit?: number | undefined;
  readonly after?: string | undefined;
}

export function pageLimit(page: Page): number {
  return Math.min(Math.max(page.limit ?? 1000, 1), maxListLimit);
}

export function notFound(what: string, key: string): AthanorError {
  return new AthanorError('not_found', `no ${what} '${key}' in your scopes`);
}

export function parseQueryScope(text: string | undefined): Scope | undefined {
  return text === undefined ? undefined : parseScope(text);
}

/** Loads a network the caller may see; anything else is "not found", whether it exists or not. */
export async function requireNetwork(store: Store, principal: Principal, key: string): Promise<q.NetworkRow> {
  const row = await q.findNetwork(store.db, key);
  if (!row || !canAccess(principal, row.scope)) throw notFound('network', key);
  return row;
}

export interface SubmitNetworkInput {
  readonly scope: string;
  readonly name: string;
  readonly transformations: readonly TransformationContent[];
  readonly state?: NetworkState | undefined;
}

/** How much one submission may hold (config `maxNetworkTransformations`, `maxInputsBytes`). */
export interface NetworkLimits {
  /** Most transformations in one network; default 100000. */
  readonly maxTransformations: number;
  /** Largest canonical JSON of one transformation's inputs, in bytes; default 1 MiB. */
  readonly maxInputsBytes: number;
}

export const defaultNetworkLimits = {
  maxTransformations: 100_000,
  maxInputsBytes: 1024 * 1024,
} as const satisfies NetworkLimits;

/** Transformations keyed between two yields to the event loop: a big network never stalls the others. */
const keyingSliceSize = 200;

/**
 * `networkKey` of distinct transformation keys in sorted order, hashed a slice at a time with a
 * yield to the event loop between slices.
 */
async function networkKeyBetweenYields(
  scope: Scope,
  name: string,
  sortedUniqueKeys: readonly string[],
): Promise<string> {
  const hash = createHash('sha256');
  for (const piece of networkKeyText(scope, name, sortedUniqueKeys, 1000)) {
    hash.update(piece);
    await setImmediate();
  }
  return `net-${hash.digest('hex')}`;
}

const sortRunSize = 5000;

/**
 * The items in `Array.prototype.sort` order of their keys: runs sorted one by one, then merged
 * pairwise, with yields between them (sorting 100,000 keys at once takes a few hundred milliseconds).
 */
async function sortBetweenYields<T>(items: readonly T[], keyOf: (item: T) => string): Promise<T[]> {
  const byKey = (a: T, b: T) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0);
  let runs: T[][] = [];
  for (let i = 0; i < items.length; i += sortRunSize) {
    runs.push(items.slice(i, i + sortRunSize).sort(byKey));
    await setImmediate();
  }
  while (runs.length > 1) {
    const merged: T[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const [a, b] = [runs[i] as T[], runs[i + 1]];
      merged.push(b ? await mergeSortedBetweenYields(a, b, keyOf) : a);
    }
    runs = merged;
  }
  return runs[0] ?? [];
}

/** Two sorted lists merged, `sortRunSize` items between two yields (the last merge holds them all). */
async function mergeSortedBetweenYields<T>(
  a: readonly T[],
  b: readonly T[],
  keyOf: (item: T) => string,
): Promise<T[]> {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const end = out.length + sortRunSize;
    while (out.length < end && i < a.length && j < b.length)
      out.push(keyOf(a[i]!) <= keyOf(b[j]!) ? a[i++]! : b[j++]!);
    while (out.length < end && i < a.length && j >= b.length) out.push(a[i++]!);
    while (out.length < end && j < b.length && i >= a.length) out.push(b[j++]!);
    await setImmediate();
  }
  return out;
}

/** Submits a network; the same content in the same scope returns the same key (`created: false`). */
export async function submitNetwork(
  store: Store,
  principal: Principal,
  input: SubmitNetworkInput,
  limits: NetworkLimits = defaultNetworkLimits,
): Promise<{ key: string; created: boolean; transformations: string[] }> {
  const scope = parseSpecificScope(input.scope);
  requireScope(principal, scope);
  if (input.transformations.length === 0) {
    throw new AthanorError('validation_failed', 'body/transformations must hold at least one transformation');
  }
  if (input.transformations.length > limits.maxTransformations) {
    throw new AthanorError(
      'limit_exceeded',
      `the network holds ${input.transformations.length} transformations; this server accepts at most ${limits.maxTransformations} per network (ATHANOR_MAX_NETWORK_TRANSFORMATIONS): split it into several networks`,
    );
  }
  const now = new Date().toISOString();
  // Keyed and deduplicated in the same sliced pass: one more pass over 100,000 rows at once
  // (a Map of them, a list of their keys) held the event loop for about 100 ms.
  const unique = new Map<string, q.TransformationRow>();
  const transformationKeys: string[] = [];
  for (const [index, t] of input.transformations.entries()) {
    if (index > 0 && index % keyingSliceSize === 0) await setImmediate();
    const inputs = canonicalJson(t.inputs ?? null);
    if (Buffer.byteLength(inputs) > limits.maxInputsBytes) {
      throw new AthanorError(
        'limit_exceeded',
        `transformation ${index} ('${t.name.slice(0, 100)}') has ${Buffer.byteLength(inputs)} bytes of inputs; this server accepts at most ${limits.maxInputsBytes} (ATHANOR_MAX_INPUTS_BYTES): store large data as results or objects and pass a reference`,
      );
    }
    const rowKey = transformationKey(scope, t);
    transformationKeys.push(rowKey);
    if (!unique.has(rowKey)) {
      unique.set(rowKey, {
        key: rowKey,
        scope: formatScope(scope),
        name: t.name,
        protocol: t.protocol,
        inputs,
        created_at: now,
      });
    }
  }
  // In key order the rows go into the indexes one after another, and the membership rows' foreign
  // key checks read the transformations in order: in arrival order each statement reads pages at
  // random and SQLite took up to ten times longer per statement.
  const sortedRows = await sortBetweenYields([...unique.values()], (row) => row.key);
  const keys = sortedRows.map((row) => row.key);
  const key = await networkKeyBetweenYields(scope, input.name, keys);
  const created = await store.transaction(async (trx) => {
    // Submitting a network again returns it, so only a network not yet stored counts against the quota.
    if (!(await q.findNetwork(trx, key))) await checkNetworksQuota(trx, principal);
    await q.insertTransformations(trx, sortedRows);
    const inserted = await q.insertNetwork(
      trx,
      {
        key,
        scope: formatScope(scope),
        name: input.name,
        state: input.state ?? 'active',
        created_at: now,
        created_by: principalName(principal),
        updated_at: now,
      },
      keys,
    );
    if (inserted)
      await recordNetworkEvent(trx, { key, scope: formatScope(scope) }, 'network.submitted', now, {
        name: input.name,
      });
    // The commit, and then the answer of 100,000 keys, each in a turn of the event loop of its own.
    await setImmediate();
    return inserted;
  });
  await setImmediate();
  return { key, created, transformations: transformationKeys };
}

export async function getNetwork(store: Store, principal: Principal, key: string): Promise<NetworkView> {
  const row = await requireNetwork(store, principal, key);
  return networkView(row, { transformationCount: await q.countTransformations(store.db, key) });
}

export async function listNetworks(
  store: Store,
  principal: Principal,
  filter: Page & { scope?: string | undefined; state?: NetworkState | undefined; name?: string | undefined },
): Promise<NetworkView[]> {
  const scopes = visibleScopes(principal, parseQueryScope(filter.scope));
  const rows = await q.listNetworks(store.db, { ...filter, scopes, limit: pageLimit(filter) });
  return rows.map((r) => networkView(r));
}

/**
 * Sets the state of many networks; networks outside the caller's scopes answer `null`. Leaving
 * `active` revokes the leases of running tasks that no other active network's hub holds.
 */
export async function setNetworkStates(
  store: Store,
  principal: Principal,
  keys: readonly string[],
  state: NetworkState,
): Promise<{ key: string; state: NetworkState | null }[]> {
  const now = new Date().toISOString();
  return store.transaction(async (trx) => {
    const answers: { key: string; state: NetworkState | null }[] = [];
    for (const key of keys) {
      const row = await q.findNetwork(trx, key);
      if (!row || !canAccess(principal, row.scope)) {
        answers.push({ key, state: null });
        continue;
      }
      if (row.state !== state) {
        await q.updateNetworkState(trx, key, state, now);
        await recordNetworkEvent(trx, row, 'network.state_changed', now, { from: row.state, to: state });
        if (state !== 'active') {
          const running = await runningTasksOfNetwork(trx, key);
          await revokeOrphanedLeases(trx, running, `network ${key} was set ${state}`);
        }
      }
      answers.push({ key, state });
    }
    return answers;
  });
}

export async function setHubWeight(
  store: Store,
  principal: Principal,
  key: string,
  weight: number,
): Promise<NetworkView> {
  await requireNetwork(store, principal, key);
  await store.transaction((trx) => q.updateHubWeight(trx, key, weight));
  return getNetwork(store, principal, key);
}

export async function listNetworkTransformations(
  store: Store,
  principal: Principal,
  key: string,
  page: Page,
): Promise<TransformationView[]> {
  await requireNetwork(store, principal, key);
  const rows = await q.listNetworkTransformations(store.db, key, pageLimit(page), page.after);
  return rows.map(transformationView);
}

export async function getTransformation(
  store: Store,
  principal: Principal,
  key: string,
): Promise<TransformationView> {
  const row = await q.findTransformation(store.db, key);
  if (!row || !canAccess(principal, row.scope)) throw notFound('transformation', key);
  return transformationView(row);
}

export async function listTransformations(
  store: Store,
  principal: Principal,
  filter: Page & { scope?: string | undefined; name?: string | undefined; protocol?: string | undefined },
): Promise<TransformationView[]> {
  const scopes = visibleScopes(principal, parseQueryScope(filter.scope));
  const rows = await q.listTransformations(store.db, { ...filter, scopes, limit: pageLimit(filter) });
  return rows.map(transformationView);
}

export type StatusCounts = Partial<Record<TaskStatus, number>>;

export async function networkStatus(store: Store, principal: Principal, key: string): Promise<StatusCounts> {
  await requireNetwork(store, principal, key);
  return q.networkStatusCounts(store.db, key);
}

/** Task counts per scope and status, over the query scope intersected with the caller's. */
export async function scopeStatus(
  store: Store,
  principal: Principal,
  scope: string | undefined,
): Promise<Record<string, StatusCounts>> {
  const rows = await q.scopeStatusCounts(store.db, visibleScopes(principal, parseQueryScope(scope)));
  const result: Record<string, StatusCounts> = {};
  for (const row of rows) (result[row.scope] ??= {})[row.status] = row.n;
  return result;
}

export interface RestartPolicy {
  readonly pattern: string;
  readonly maxRetries: number;
}

export async function listRestartPolicies(
  store: Store,
  principal: Principal,
  key: string,
): Promise<RestartPolicy[]> {
  await requireNetwork(store, principal, key);
  const rows = await q.listRestartPolicies(store.db, key);
  return rows.map((r) => ({ pattern: r.pattern, maxRetries: r.max_retries }));
}

/** Adds (or updates the retries of) restart policies: failures whose error text matches are retried. */
export async function addRestartPolicies(
  store: Store,
  principal: Principal,
  key: string,
  policies: readonly RestartPolicy[],
): Promise<RestartPolicy[]> {
  await requireNetwork(store, principal, key);
  await checkRestartPatterns(policies.map((p) => p.pattern));
  const now = new Date().toISOString();
  await store.transaction(async (trx) => {
    for (const p of policies) {
      await q.upsertRestartPolicy(trx, {
        network_key: key,
        pattern: p.pattern,
        max_retries: p.maxRetries,
        created_at: now,
      });
    }
  });
  return listRestartPolicies(store, principal, key);
}

export async function removeRestartPolicies(
  store: Store,
  principal: Principal,
  key: string,
  patterns: readonly string[],
): Promise<RestartPolicy[]> {
  await requireNetwork(store, principal, key);
  await store.transaction((trx) => q.deleteRestartPolicies(trx, key, patterns));
  return listRestartPolicies(store, principal, key);
}
