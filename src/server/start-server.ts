import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/resolve-config.js';
import type { ScheduleSettings } from '../ops/schedule/schedule-settings.js';
import { backupTargetOpener } from '../ops/backup/target.js';
import { resolveScheduleSettings } from '../ops/schedule/schedule-settings.js';
import { migrateDatabase } from '../ops/migrate.js';
import { osActor } from '../service/audit.js';
import { assertSchemaCompatible } from '../store/migrator.js';
import type { Store } from '../store/open-store.js';
import { openStore } from '../store/open-store.js';
import type { ApiSelection } from './app.js';
import { backupSchedulerPlugin } from './backup-scheduler-plugin.js';
import { pitrPlugin } from './pitr-plugin.js';
import { ServerLifecycle } from './lifecycle.js';

export interface ServeOptions {
  readonly api: ApiSelection;
  /** Listen address; default `config.host`. */
  readonly host?: string | undefined;
  /** Listen port; default `config.port` (0: any free port). */
  readonly port?: number | undefined;
  /** Apply pending migrations before serving instead of refusing to start; default false. */
  readonly migrate?: boolean | undefined;
  /** Whose backup defaults apply: `serve` schedules nothing unless told, `up` backs up hourly. */
  readonly backupProfile?: 'serve' | 'up';
  /** Where start-up notes go (applied migrations, a newer schema); default nowhere. */
  readonly note?: (line: string) => void;
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly url: string;
  /** The backup schedule this server runs (both undefined: none). */
  readonly backups: ScheduleSettings;
  /** Drain state and requests in flight, as `/readyz` reports them. */
  readonly lifecycle: ServerLifecycle;
  /** Stops accepting connections, lets requests in flight finish, closes the database. */
  close(): Promise<void>;
  /**
   * The graceful stop for a signal: `/readyz` answers 503 for the shutdown delay while requests
   * are still served (so a balancer takes this server out), then the listener closes, waiting
   * long-poll claims return, requests in flight finish, background jobs stop, the database closes.
   */
  shutdown(options?: { readonly note?: (line: string) => void }): Promise<void>;
}

/** Readiness-off delay when none is configured: `up` has no balancer in front to wait for. */
const defaultShutdownDelayMs = { serve: 5_000, up: 0 } as const;

/**
 * The server's composition root: opens the store, applies the start-up schema guard, builds the
 * app with its background jobs (sweeper, backup scheduler) and listens.
 */
export async function startServer(config: Config, options: ServeOptions): Promise<RunningServer> {
  const note = options.note ?? (() => {});
  const store = await openStore(config, { create: options.migrate === true, backgroundCheckpoints: true });
  let built: FastifyInstance | undefined;
  try {
    if (options.migrate) {
      const { applied } = await migrateDatabase(store, config, { actor: osActor(), by: 'serve --migrate' });
      if (applied.length > 0) note(`applied migrations ${applied.map((a) => a.id).join(', ')}`);
    }
    const compatibility = await assertSchemaCompatible(store);
    if (compatibility.verdict === 'newer_compatible') note(`warning: ${compatibility.warning}`);
    // Loaded on demand: the HTTP stack is heavy, and most commands never need it.
    const { buildApp } = await import('./app.js');
    const lifecycle = new ServerLifecycle();
    const settings = resolveScheduleSettings({
      profile: options.backupProfile ?? 'serve',
      config,
    });
    const openBackupTarget = backupTargetOpener(settings.target);
    const app = await buildApp({ store, config, api: options.api, lifecycle, openBackupTarget });
    built = app;
    const host = options.host ?? config.host;
    const port = options.port ?? config.port;
    await app.register(backupSchedulerPlugin, { store, config, settings, openTarget: openBackupTarget });
    await app.register(pitrPlugin, { config, settings });
    await app.listen({ host, port });
    const address = app.server.address();
    const boundPort = typeof address === 'object' && address ? address.port : port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
    const close = async () => {
      lifecycle.beginClose();
      const stopClosingIdle = lifecycle.closeIdleWhileClosing(app);
      try {
        await app.close();
      } finally {
        stopClosingIdle();
      }
      await store.close();
    };
    const delayMs = config.shutdownDelayMs ?? defaultShutdownDelayMs[options.backupProfile ?? 'serve'];
    return {
      app,
      store,
      url,
      backups: settings,
      lifecycle,
      close,
      shutdown: async (shutdownOptions = {}) => {
        const say = shutdownOptions.note ?? (() => {});
        lifecycle.beginDrain();
        if (delayMs > 0) {
          say(`readiness is off; serving ${delayMs} ms more so balancers stop sending here`);
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
        say(`closing the listener; ${lifecycle.inFlight} request(s) in flight will finish`);
        await close();
      },
    };
  } catch (error) {
    // Its timers and the backup scheduler stop with it: a server that failed to start must not linger.
    await built?.close().catch(() => {});
    await store.close();
    throw error;
  }
}
