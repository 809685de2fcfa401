import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { Value } from 'typebox/value';
import type { StrategyView } from '../../domain/event-types.js';
export type { StrategyView };
import type { Principal } from '../../auth/principal.js';
import { principalName } from '../../auth/principal.js';
import { AthanorError } from '../../domain/errors.js';
import type { Store } from '../../store/open-store.js';
import * as q from '../../store/queries/strategies.js';
import { audited } from '../audit.js';
import { recordNetworkEvent } from '../events/record-events.js';
import { requireNetwork } from '../networks.js';
import { builtInStrategies } from './built-in-strategies.js';
import type { NetworkPicture, Strategy, StrategyAction, TransformationPicture } from './strategy.js';

/** The strategies a server knows, by name. */
export type StrategyRegistry = ReadonlyMap<string, Strategy>;

/** The built-in strategies plus those the modules export (`export const strategies = [...]`). */
export async function loadStrategies(modules: readonly string[] = []): Promise<StrategyRegistry> {
  const registry = new Map<string, Strategy>(builtInStrategies.map((s) => [s.name, s]));
  for (const file of modules) {
    const loaded = (await import(pathToFileURL(path.resolve(file)).href)) as {
      strategies?: unknown;
      default?: unknown;
    };
    const list = (loaded.strategies ?? loaded.default) as Strategy[] | undefined;
    if (!Array.isArray(list))
      throw new AthanorError('invalid_config', `strategy module ${file} exports no 'strategies' array`);
    for (const strategy of list) {
      if (typeof strategy?.name !== 'string' || typeof strategy.decide !== 'function')
        throw new AthanorError(
          'invalid_config',
          `strategy module ${file} exports an entry without name and decide()`,
        );
      registry.set(strategy.name, strategy);
    }
  }
  return registry;
}

export function strategyView(row: q.NetworkStrategyRow): StrategyView {
  return {
    network: row.network_key,
    name: row.name,
    params: JSON.parse(row.params) as unknown,
    state: row.state,
    lastError: row.last_error,
    lastRunAt: row.last_run_at,
    runs: row.runs,
    setBy: row.created_by,
    updatedAt: row.updated_at,
  };
}

function requireStrategy(registry: StrategyRegistry, name: string): Strategy {
  const strategy = registry.get(name);
  if (!strategy) {
    throw new AthanorError(
      'validation_failed',
      `body/name: there is no strategy '${name.slice(0, 100)}'; known: ${[...registry.keys()].join(', ')}`,
    );
  }
  return strategy;
}

function checkParams(strategy: Strategy, params: unknown): void {
  if (Value.Check(strategy.parameters, params)) return;
  const first =
    [...Value.Errors(strategy.parameters, params)].find((e) => e.keyword !== 'boolean') ??
    [...Value.Errors(strategy.parameters, params)][0];
  const where = first?.instancePath ? `body/params${first.instancePath}` : 'body/params';
  throw new AthanorError(
    'validation_failed',
    `${where} ${first?.message ?? 'does not fit'} (strategy '${strategy.name}' takes ${JSON.stringify(strategy.parameters)})`,
  );
}

/** Names the network's strategy and its parameters (checked against its schema) and starts it. */
export async function setStrategy(
  store: Store,
  principal: Principal,
  registry: StrategyRegistry,
  networkKey: string,
  input: { name: string; params?: unknown },
): Promise<StrategyView> {
  const strategy = requireStrategy(registry, input.name);
  const params = input.params ?? {};
  checkParams(strategy, params);
  const network = await requireNetwork(store, principal, networkKey);
  const now = new Date().toISOString();
  const row: q.NetworkStrategyRow = {
    network_key: networkKey,
    name: strategy.name,
    params: JSON.stringify(params),
    state: 'active',
    last_error: null,
    last_run_at: null,
    runs: 0,
    created_by: principalName(principal),
    updated_at: now,
  };
  await audited(
    store,
    { actor: principalName(principal), action: 'strategy.set', target: networkKey },
    async (trx) => {
      await q.upsertStrategy(trx, row);
      await recordNetworkEvent(trx, network, 'strategy.set', now, { name: strategy.name });
      return { result: undefined, details: { name: strategy.name, params } };
    },
  );
  return strategyView(row);
}

export async function getStrategy(
  store: Store,
  principal: Principal,
  networkKey: string,
): Promise<StrategyView> {
  await requireNetwork(store, principal, networkKey);
  const row = await q.findStrategy(store.db, networkKey);
  if (!row)
    throw new AthanorError(
      'not_found',
      `network '${networkKey}' names no strategy: set one with 'athanor strategy set'`,
    );
  return strategyView(row);
}

export async function removeStrategy(store: Store, principal: Principal, networkKey: string) {
  await requireNetwork(store, principal, networkKey);
  const removed = await audited(
    store,
    { actor: principalName(principal), action: 'strategy.remove', target: networkKey },
    async (trx) => ({ result: await q.deleteStrategy(trx, networkKey) }),
  );
  if (!removed) throw new AthanorError('not_found', `network '${networkKey}' names no strategy`);
  return { network: networkKey, removed: true as const };
}

/** The network as its strategy sees it. */
export async function networkPicture(
  store: Store,
  network: NetworkPicture['network'],
): Promise<NetworkPicture> {
  const rows = await q.networkPictureRows(store.db, network.key);
  const byKey = new Map<
    string,
    {
      complete: number;
      error: number;
      waiting: number;
      running: number;
      waitingTasks: { id: string; priority: number }[];
    }
  >();
  for (const t of rows.transformations)
    byKey.set(t.key, { complete: 0, error: 0, waiting: 0, running: 0, waitingTasks: [] });
  for (const c of rows.counts) {
    const entry = byKey.get(c.transformation_key);
    if (entry && (c.status === 'complete' || c.status === 'error')) entry[c.status] = Number(c.n);
  }
  for (const task of rows.onHub) {
    const entry = byKey.get(task.transformation_key);
    if (!entry) continue;
    if (task.status === 'running') entry.running += 1;
    else {
      entry.waiting += 1;
      if (entry.waitingTasks.length < 1000) entry.waitingTasks.push({ id: task.id, priority: task.priority });
    }
  }
  const transformations: TransformationPicture[] = rows.transformations.map((t) => ({
    key: t.key,
    name: t.name,
    protocol: t.protocol,
    ...byKey.get(t.key)!,
  }));
  return { network, transformations };
}

/** Most actions one run may answer; more is taken for a strategy gone wrong. */
export const maxActionsPerRun = 10_000;

/** Runs `decide` with a deadline and checks what it answers; throws with the reason otherwise. */
export async function decideWithin(
  strategy: Strategy,
  picture: NetworkPicture,
  params: unknown,
  deadlineMs: number,
): Promise<readonly StrategyAction[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AthanorError('conflict', `strategy '${strategy.name}' did not decide within ${deadlineMs} ms`),
        ),
      deadlineMs,
    );
  });
  try {
    const actions = await Promise.race([
      Promise.resolve().then(() => strategy.decide(picture, params)),
      deadline,
    ]);
    if (!Array.isArray(actions))
      throw new AthanorError('conflict', `strategy '${strategy.name}' answered no list of actions`);
    if (actions.length > maxActionsPerRun)
      throw new AthanorError(
        'conflict',
        `strategy '${strategy.name}' answered ${actions.length} actions; at most ${maxActionsPerRun} are carried out`,
      );
    return actions as readonly StrategyAction[];
  } finally {
    clearTimeout(timer);
  }
}

/** What the network's strategy would do now, without doing it. */
export async function previewStrategy(
  store: Store,
  principal: Principal,
  registry: StrategyRegistry,
  networkKey: string,
  deadlineMs: number,
): Promise<{ strategy: StrategyView; actions: readonly StrategyAction[] }> {
  const network = await requireNetwork(store, principal, networkKey);
  const row = await q.findStrategy(store.db, networkKey);
  if (!row)
    throw new AthanorError(
      'not_found',
      `network '${networkKey}' names no strategy: set one with 'athanor strategy set'`,
    );
  const strategy = requireStrategy(registry, row.name);
  const picture = await networkPicture(store, network);
  return {
    strategy: strategyView(row),
    actions: await decideWithin(strategy, picture, JSON.parse(row.params), deadlineMs),
  };
}
