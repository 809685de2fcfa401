import type { FastifyInstance } from 'fastify';
import { AthanorError } from '../domain/errors.js';
import type { MaintenanceWatch } from '../ops/maintenance.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A write that goes on while the platform is in maintenance: tokens, what lets held leases
     * finish their work (results, lease and service heartbeats, releases, deregistering), the
     * console's sign-in and turning maintenance off.
     */
    writesInMaintenance?: boolean;
  }
}

/** In maintenance, every write and claim answers 503 unless its route says `writesInMaintenance`; reads go on. */
export function refuseWritesInMaintenance(app: FastifyInstance, maintenance: MaintenanceWatch): void {
  app.addHook('onRequest', async (request) => {
    if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS') return;
    if (request.routeOptions.config.writesInMaintenance) return;
    const state = await maintenance.current();
    if (state.on) {
      throw new AthanorError(
        'maintenance',
        `the platform is in maintenance (${state.reason ?? 'no reason given'}); reads work, writes and claims resume when it ends`,
      );
    }
  });
}
