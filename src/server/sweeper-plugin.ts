import type { FastifyInstance } from 'fastify';
import { isAthanorError } from '../domain/errors.js';
import { leasesExpired } from '../ops/metrics.js';
import { sweep } from '../service/sweep.js';
import type { Store } from '../store/open-store.js';

export interface SweeperOptions {
  readonly store: Store;
  /** Milliseconds between rounds; 0 or less: no sweeper. */
  readonly intervalMs: number;
}

/**
 * Expires stale leases and registrations on a timer while the server runs; stops in `onClose`,
 * after the round in progress. Every replica runs the timer; the leader lock inside `sweep` lets
 * one of them act per round.
 */
export async function sweeperPlugin(app: FastifyInstance, options: SweeperOptions): Promise<void> {
  const { store, intervalMs } = options;
  if (intervalMs <= 0) return;
  let running: Promise<unknown> | undefined;
  // While the database is unavailable the sweeper says so once, then quietly tries every round.
  let paused = false;
  const timer = setInterval(() => {
    if (running) return;
    running = sweep(store)
      .then((outcome) => {
        if (paused) app.log.info('database available again: lease sweeper resumed');
        paused = false;
        leasesExpired.inc(outcome.expiredLeases);
        if (outcome.expiredLeases || outcome.expiredServices)
          app.log.info(outcome, 'expired stale leases and registrations');
      })
      .catch((error: unknown) => {
        if (isAthanorError(error) && error.code === 'database_unavailable') {
          if (!paused)
            app.log.warn({ err: error }, 'database unavailable: lease sweeper paused until it returns');
          paused = true;
        } else app.log.warn({ err: error }, 'lease sweep failed; retrying next round');
      })
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    await running;
  });
}
