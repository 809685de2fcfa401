import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/resolve-config.js';
import { isAthanorError } from '../domain/errors.js';
import { sequenceRound, waitForEvents } from '../service/events/event-log.js';
import { holdLeaderLease, processHolderId, releaseLeaderLease } from '../service/events/leader-lease.js';
import type { WebhookSettings } from '../service/events/webhooks.js';
import { deliverEndpoint } from '../service/events/webhooks.js';
import { activeEndpoints } from '../store/queries/webhooks.js';
import type { StrategyRegistry } from '../service/strategies/strategies.js';
import { strategyRound } from '../service/strategies/strategy-runner.js';
import type { Store } from '../store/open-store.js';

export interface EventsPluginOptions {
  readonly store: Store;
  readonly config: Config;
  readonly strategies: StrategyRegistry;
  /** True while maintenance is on: the loops then pause (a migration or restore is under way). */
  readonly inMaintenance?: () => Promise<boolean>;
}

/** How long a delivery or strategy leader holds its lease without renewing it. */
const leaderTtlMs = 10_000;
/** Prune old events at most this often. */
const pruneEveryMs = 60_000;

export function webhookSettings(config: Config): WebhookSettings {
  return {
    allowPrivate: config.webhookAllowPrivate,
    timeoutMs: config.webhookTimeoutMs,
    maxResponseBytes: config.webhookMaxResponseBytes,
    retryBaseMs: config.webhookRetryBaseMs,
    retryMaxMs: config.webhookRetryMaxMs,
    retryForMs: config.webhookRetryForMs,
  };
}

/**
 * The event machinery of a server, each a loop that every replica runs and one leader acts in:
 * the sequencer (numbers committed events; the sweeper's leader lock per round), webhook delivery
 * and strategies (each under a leader lease, since they work outside a transaction). All stop in
 * `onClose` after their round in progress; the leases are given up so another replica takes over.
 */
export async function eventsPlugin(app: FastifyInstance, options: EventsPluginOptions): Promise<void> {
  const { store, config, strategies } = options;
  const intervalMs = config.eventsIntervalMs;
  if (intervalMs <= 0) return;
  const stopping = new AbortController();
  const settings = webhookSettings(config);
  const leaseHeldUntil = { webhooks: 0, strategies: 0 };
  const stillLeader = (name: keyof typeof leaseHeldUntil) => () =>
    !stopping.signal.aborted && Date.now() < leaseHeldUntil[name];
  const takeLease = async (name: keyof typeof leaseHeldUntil) => {
    const started = Date.now();
    // Renewed when half its time is left, not every round: an idle server writes little.
    if (started < leaseHeldUntil[name] - leaderTtlMs / 2) return true;
    if (await holdLeaderLease(store, name, processHolderId, leaderTtlMs, started)) {
      leaseHeldUntil[name] = started + leaderTtlMs - 1000;
      return true;
    }
    leaseHeldUntil[name] = 0;
    return false;
  };

  let lastPrune = 0;
  const warned = new Set<string>();
  // The sequencer keeps its own pace (its bell would wake it at once, and a stream of write
  // transactions would queue behind the claims on SQLite); the others wake when it rings.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopping.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopping.signal.addEventListener('abort', done);
    });
  const loop = (name: string, round: () => Promise<void>, wake: 'bell' | 'timer' = 'bell') =>
    (async () => {
      while (!stopping.signal.aborted) {
        try {
          if (!(await options.inMaintenance?.())) await round();
          if (warned.delete(name)) app.log.info(`${name}: working again`);
        } catch (error) {
          const unavailable = isAthanorError(error) && error.code === 'database_unavailable';
          if (!warned.has(name) || !unavailable)
            app.log.warn({ err: error }, `${name} round failed; retrying`);
          warned.add(name);
        }
        if (wake === 'bell') await waitForEvents(store, intervalMs, stopping.signal);
        else await sleep(intervalMs);
      }
    })();

  const loops = [
    loop(
      'event sequencer',
      async () => {
        const prune = Date.now() - lastPrune > pruneEveryMs;
        const outcome = await sequenceRound(store, {
          retentionMs: config.eventRetentionHours * 3_600_000,
          prune,
        });
        if (prune && outcome.leader) lastPrune = Date.now();
      },
      'timer',
    ),
    loop('webhook delivery', async () => {
      if (!(await takeLease('webhooks'))) return;
      const endpoints = await activeEndpoints(store.db);
      await Promise.all(
        endpoints.map((endpoint) =>
          deliverEndpoint(store, endpoint, settings, { batch: 200, stillLeader: stillLeader('webhooks') }),
        ),
      );
    }),
    loop('strategies', async () => {
      if (!(await takeLease('strategies'))) return;
      await strategyRound(store, strategies, { deadlineMs: config.strategyDeadlineMs });
    }),
  ];

  app.addHook('onClose', async () => {
    stopping.abort();
    await Promise.all(loops);
    await Promise.all(
      (['webhooks', 'strategies'] as const).map((name) =>
        leaseHeldUntil[name] > 0
          ? releaseLeaderLease(store, name, processHolderId).catch(() => {})
          : undefined,
      ),
    );
  });
}
