import type { Principal } from '../../auth/principal.js';
import { errorFacts } from '../../domain/errors.js';
import type { Store } from '../../store/open-store.js';
import { listEvents } from '../../store/queries/events.js';
import { findNetwork } from '../../store/queries/networks.js';
import { getSetting, putSetting } from '../../store/queries/settings.js';
import * as q from '../../store/queries/strategies.js';
import { recordAudit } from '../audit.js';
import { currentPrincipal } from '../events/acting-principal.js';
import { recordNetworkEvent } from '../events/record-events.js';
import { ensureTasks } from '../ensure-tasks.js';
import { setHubWeight } from '../networks.js';
import { setTaskPriorities } from '../tasks.js';
import type { StrategyRegistry } from './strategies.js';
import { decideWithin, networkPicture } from './strategies.js';
import type { StrategyAction } from './strategy.js';
import { parseScope } from '../../domain/scope.js';

const cursorKey = 'strategies.position';
const memory = new WeakMap<Store, number>();
const storedAt = new WeakMap<Store, number>();

export interface StrategyRoundOutcome {
  readonly networks: number;
  readonly actions: number;
  readonly failed: number;
}

/**
 * One round of the strategy leader: the networks that events since the last round touched (a
 * result, a status change, a strategy set) and that name an active strategy are run once each.
 */
export async function strategyRound(
  store: Store,
  registry: StrategyRegistry,
  options: { readonly deadlineMs: number },
): Promise<StrategyRoundOutcome> {
  const after = memory.get(store) ?? Number((await getSetting(store.db, cursorKey)) ?? '0');
  const events = await listEvents(store.db, { after, scopes: [parseScope('*-*-*')], limit: 5000 });
  if (events.length === 0) return { networks: 0, actions: 0, failed: 0 };
  const touched = new Set<string>();
  for (const event of events) if (event.network_key !== null) touched.add(event.network_key);
  const strategies = await q.activeStrategies(store.db, [...touched]);
  let actions = 0;
  let failed = 0;
  for (const row of strategies) {
    const outcome = await runStrategy(store, registry, row, options.deadlineMs);
    actions += outcome.actions;
    if (!outcome.ok) failed += 1;
  }
  // The cursor lives in memory between rounds and is stored when a strategy ran or every few
  // seconds: a restart may look at a few events again, which only runs idempotent strategies again.
  const last = events.at(-1)!.position;
  memory.set(store, last);
  if (strategies.length > 0 || Date.now() - (storedAt.get(store) ?? 0) > 5000) {
    await putSetting(store.db, cursorKey, String(last), new Date().toISOString());
    storedAt.set(store, Date.now());
  }
  return { networks: strategies.length, actions, failed };
}

/**
 * Runs one network's strategy and carries out what it decides, as its owner, each action audited
 * and attributed to it. A strategy that throws, overruns its deadline or answers nonsense is
 * stopped with the error recorded, before any action: the network stays as it was.
 */
export async function runStrategy(
  store: Store,
  registry: StrategyRegistry,
  row: q.NetworkStrategyRow,
  deadlineMs: number,
): Promise<{ ok: boolean; actions: number }> {
  const actor = `strategy:${row.name}`;
  const now = () => new Date().toISOString();
  const network = await findNetwork(store.db, row.network_key);
  if (!network) return { ok: true, actions: 0 };
  const stop = async (error: unknown) => {
    const facts = errorFacts(error);
    const message = facts.message.slice(0, 2000);
    await store.transaction(async (trx) => {
      await q.updateStrategy(trx, row.network_key, {
        state: 'stopped',
        last_error: message,
        last_run_at: now(),
        updated_at: now(),
      });
      await recordNetworkEvent(trx, network, 'strategy.failed', now(), { name: row.name, error: message });
    });
    await recordAudit(store, {
      actor,
      action: 'strategy.stop',
      target: row.network_key,
      outcome: 'error',
      details: { error: message },
    });
    return { ok: false, actions: 0 };
  };
  const strategy = registry.get(row.name);
  if (!strategy) return stop(new Error(`this server knows no strategy '${row.name}'`));
  const owner = await currentPrincipal(store, row.created_by);
  if (!owner) return stop(new Error(`its owner ${row.created_by} was removed, disabled or expired`));
  let decided: readonly StrategyAction[];
  try {
    decided = await decideWithin(
      strategy,
      await networkPicture(store, network),
      JSON.parse(row.params),
      deadlineMs,
    );
  } catch (error) {
    return stop(error);
  }
  let done = 0;
  for (const action of decided) {
    try {
      const details = await carryOut(store, owner, row.network_key, action);
      await recordAudit(store, {
        actor,
        action: `strategy.${action.kind}`,
        target: row.network_key,
        outcome: 'ok',
        details: { owner: row.created_by, ...details },
      });
      done += 1;
    } catch (error) {
      await recordAudit(store, {
        actor,
        action: `strategy.${action.kind}`,
        target: row.network_key,
        outcome: 'error',
        details: { owner: row.created_by, ...errorFacts(error) },
      });
    }
  }
  await q.updateStrategy(store.db, row.network_key, { last_run_at: now(), runs: row.runs + 1 });
  return { ok: true, actions: done };
}

async function carryOut(
  store: Store,
  owner: Principal,
  networkKey: string,
  action: StrategyAction,
): Promise<Record<string, unknown>> {
  switch (action.kind) {
    case 'ensure_tasks': {
      const answer = await ensureTasks(store, owner, action.transformation, {
        count: action.count,
        network: networkKey,
        priority: action.priority,
        weight: action.weight,
      });
      return { transformation: action.transformation, count: action.count, created: answer.created.length };
    }
    case 'set_priority': {
      const answers = await setTaskPriorities(store, owner, action.tasks, action.priority);
      return { priority: action.priority, tasks: answers.filter((a) => a.result !== null).length };
    }
    case 'set_hub_weight':
      await setHubWeight(store, owner, networkKey, action.weight);
      return { weight: action.weight };
    default:
      throw new Error(`unknown action ${JSON.stringify(action).slice(0, 200)}`);
  }
}
