import type { FastifyPluginAsync } from 'fastify';
import { AthanorError, errorBody } from '../domain/errors.js';
import type { MaintenanceWatch } from '../ops/maintenance.js';
import { metricsRegistry, scrapeMetrics } from '../ops/metrics.js';
import { dependencyRetryAfterSeconds } from '../store/database-availability.js';
import { assertSchemaCompatible } from '../store/migrator.js';
import type { Store } from '../store/open-store.js';
import { appVersion } from '../version.js';
import type { ServerLifecycle } from './lifecycle.js';
import { metricsScrapeAuthorized, refreshQueueMetrics } from './queue-metrics.js';

export interface ProbeRouteOptions {
  readonly store: Store;
  readonly maintenance: MaintenanceWatch;
  readonly lifecycle: ServerLifecycle;
  /** Unlocks the per-scope series of `/metrics` (`ATHANOR_METRICS_TOKEN`); none: no scope named. */
  readonly metricsToken: string | undefined;
  /** Re-reads the backup gauges from the target (`backupGaugeRefresher`). */
  readonly refreshBackupGauges: () => Promise<void>;
}

/**
 * The probes of balancers, monitors and `deploy status`, outside the APIs and their auth:
 * `/healthz` (the process answers), `/readyz` (it can serve: database reachable, schema
 * compatible, not draining, not in maintenance) and `/metrics` (Prometheus).
 */
export const probeRoutes: FastifyPluginAsync<ProbeRouteOptions> = async (app, options) => {
  const { store, maintenance, lifecycle, refreshBackupGauges } = options;
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    const scoped = metricsScrapeAuthorized(request.headers.authorization, options.metricsToken);
    await Promise.all([refreshQueueMetrics(store, maintenance, { scoped }), refreshBackupGauges()]);
    return reply.header('content-type', metricsRegistry.contentType).send(await scrapeMetrics(scoped));
  });
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', version: appVersion }));
  // Unauthenticated like /healthz: what `deploy status` and balancers need, never a secret.
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const facts = { version: appVersion, inFlight: lifecycle.inFlight, requests: lifecycle.started };
    const notReady = (error: AthanorError) =>
      reply.status(503).send({ ...errorBody(error), status: 'not_ready', ...facts });
    try {
      if (lifecycle.draining) {
        return await notReady(
          new AthanorError('shutting_down', 'this server is shutting down; send requests to another one'),
        );
      }
      if (store.replaced()) {
        throw new AthanorError(
          'database_unavailable',
          `the database file was replaced since this server opened it (a restore?): restart the server to use it`,
        );
      }
      const compatibility = await assertSchemaCompatible(store);
      const state = await maintenance.current();
      if (state.on) {
        void reply.header('retry-after', '30');
        return await notReady(
          new AthanorError('maintenance', `in maintenance: ${state.reason ?? 'no reason given'}`),
        );
      }
      return {
        status: 'ready',
        schema: compatibility.status.databaseVersion,
        releaseSchema: compatibility.status.releaseVersion,
        ...facts,
      };
    } catch (error) {
      void reply.header('retry-after', String(dependencyRetryAfterSeconds));
      return notReady(
        error instanceof AthanorError
          ? error
          : new AthanorError('database_unavailable', 'database unreachable'),
      );
    }
  });
};
