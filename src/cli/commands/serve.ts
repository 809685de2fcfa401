import type { FastifyInstance } from 'fastify';
import { Command, Option } from 'commander';
import type { Config } from '../../config/resolve-config.js';
import type { ScheduleSettings } from '../../ops/schedule/schedule-settings.js';
import { resolveScheduleSettings } from '../../ops/schedule/schedule-settings.js';
import type { ApiSelection } from '../../server/app.js';
import { osActor, recordAudit } from '../../service/audit.js';
import { assertSchemaCompatible, migrate } from '../../store/migrator.js';
import type { Store } from '../../store/open-store.js';
import { openStore } from '../../store/open-store.js';
import { commandConfig, portOption } from '../context.js';
import { note } from '../output.js';

export interface ServeOptions {
  readonly api: ApiSelection;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly migrate?: boolean | undefined;
  /** Whose backup defaults apply: `serve` schedules nothing unless told, `up` backs up hourly. */
  readonly backupProfile?: 'serve' | 'up';
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

/** Opens the store, applies the start-up schema guard, and listens. */
export async function startServer(config: Config, options: ServeOptions): Promise<RunningServer> {
  const store = await openStore(config, { create: options.migrate === true });
  let built: FastifyInstance | undefined;
  try {
    if (options.migrate) {
      const applied = await migrate(store, { lockTimeoutMs: config.lockTimeoutMs });
      if (applied.length > 0) {
        note(`applied migrations ${applied.map((a) => a.id).join(', ')}`);
        await recordAudit(store, {
          actor: osActor(),
          action: 'database.migrate',
          target: store.displayUrl,
          outcome: 'ok',
          details: { applied: applied.map((a) => a.id), by: 'serve --migrate' },
        });
      }
    }
    const compatibility = await assertSchemaCompatible(store);
    if (compatibility.verdict === 'newer_compatible') note(`warning: ${compatibility.warning}`);
    // Loaded on demand: the HTTP stack is heavy, and most commands never need it.
    const { buildApp } = await import('../../server/app.js');
    const app = await buildApp({ store, config, api: options.api });
    built = app;
    const host = options.host ?? config.host;
    const port = options.port ?? config.port;
    // Scheduled backups, pruning and restore drills run inside the server; one replica per slot.
    const settings = resolveScheduleSettings({
      profile: options.backupProfile ?? 'serve',
      dataDir: config.dataDir,
    });
    let scheduler: { stop(): Promise<void> } | undefined;
    if (settings.schedule || settings.drillSchedule) {
      const { startBackupScheduler } = await import('../../ops/schedule/backup-scheduler.js');
      scheduler = startBackupScheduler({
        store,
        config,
        ...settings,
        log: (message, fields) => app.log[fields.level](fields, message),
      });
      app.addHook('onClose', async () => scheduler?.stop());
    }
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
    // Its timers and the backup scheduler stop with it: a server that failed to start must not linger.
    await built?.close().catch(() => {});
    await store.close();
    throw error;
  }
}

/** Resolves when SIGTERM or SIGINT arrives. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve the user and compute APIs over HTTP')
    .addOption(
      new Option('--api <api>', 'which API to serve').choices(['user', 'compute', 'all']).default('all'),
    )
    .option('--host <address>', 'listen address (ATHANOR_HOST, default 127.0.0.1)')
    .option('--port <port>', 'listen port (ATHANOR_PORT, default 8080)', portOption())
    .option('--migrate', 'apply pending migrations before serving instead of refusing to start')
    .action(async (options: ServeOptions, cmd: Command) => {
      const server = await startServer(commandConfig(cmd), options);
      note(
        `athanor serving the ${options.api === 'all' ? 'user and compute APIs' : `${options.api} API`} on ${server.url}`,
      );
      const signal = await untilSignal();
      note(`received ${signal}: finishing requests in flight, then stopping`);
      await server.close();
    });
}
