import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/resolve-config.js';
import type { ScheduleSettings } from '../ops/schedule/schedule-settings.js';
import { resolveScheduleSettings } from '../ops/schedule/schedule-settings.js';
import { migrateDatabase } from '../ops/migrate.js';
import { osActor } from '../service/audit.js';
import { assertSchemaCompatible } from '../store/migrator.js';
import type { Store } from '../store/open-store.js';
import { openStore } from '../store/open-store.js';
import type { ApiSelection } from './app.js';
import { backupSchedulerPlugin } from './backup-scheduler-plugin.js';

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
  /** Stops accepting connections, lets requests in flight finish, closes the database. */
  close(): Promise<void>;
}

/**
 * The server's composition root: opens the store, applies the start-up schema guard, builds the
 * app with its background jobs (sweeper, backup scheduler) and listens.
 */
export async function startServer(config: Config, options: ServeOptions): Promise<RunningServer> {
  const note = options.note ?? (() => {});
  const store = await openStore(config, { create: options.migrate === true });
  try {
    if (options.migrate) {
      const { applied } = await migrateDatabase(store, config, { actor: osActor(), by: 'serve --migrate' });
      if (applied.length > 0) note(`applied migrations ${applied.map((a) => a.id).join(', ')}`);
    }
    const compatibility = await assertSchemaCompatible(store);
    if (compatibility.verdict === 'newer_compatible') note(`warning: ${compatibility.warning}`);
    // Loaded on demand: the HTTP stack is heavy, and most commands never need it.
    const { buildApp } = await import('./app.js');
    const app = await buildApp({ store, config, api: options.api });
    const host = options.host ?? config.host;
    const port = options.port ?? config.port;
    const settings = resolveScheduleSettings({
      profile: options.backupProfile ?? 'serve',
      config,
    });
    await app.register(backupSchedulerPlugin, { store, config, settings });
    await app.listen({ host, port });
    const address = app.server.address();
    const boundPort = typeof address === 'object' && address ? address.port : port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
    return {
      app,
      store,
      url,
      backups: settings,
      close: async () => {
        await app.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
