import path from 'node:path';
import { Command } from 'commander';
import { commandConfig, integerOption, portOption } from '../context.js';
import { redactUrl } from '../../domain/database-url.js';
import { appVersion } from '../../version.js';
import { note } from '../output.js';
import { stopOnSignal, untilSignal } from '../signals.js';
import { printFirstRunKey, printUpBanner } from '../up-banner.js';

export function upCommand(): Command {
  return new Command('up')
    .description(
      'run Athanor on this host: create and migrate the database, make an admin on first run, serve',
    )
    .option('--host <address>', 'listen address (ATHANOR_HOST, default 127.0.0.1)')
    .option('--port <port>', 'listen port (ATHANOR_PORT, default 8080)', portOption())
    .option(
      '-c, --concurrency <n>',
      'tasks the local compute service runs at once',
      integerOption('--concurrency', { min: 1, max: 1000 }),
      2,
    )
    .action(async (options: { host?: string; port?: number; concurrency: number }, cmd: Command) => {
      const config = commandConfig(cmd);
      // The server and the store load only to run, not for every --help.
      const [
        { generateKey },
        { osActor },
        { ensureSingleHostIdentities, localComputeIdentity },
        { writeFirstRunKey },
        { startServer },
      ] = await Promise.all([
        import('../../auth/keys.js'),
        import('../../service/audit.js'),
        import('../../service/single-host-identities.js'),
        import('../../ops/first-run-key.js'),
        import('../../server/start-server.js'),
      ]);
      // The local compute service gets a fresh key at every start; it lives only in this process.
      const computeKey = generateKey();
      const server = await startServer(config, {
        api: 'all',
        host: options.host,
        port: options.port,
        migrate: true,
        backupProfile: 'up',
        note,
      });
      // Identities are made once the server listens, so a failed start never swallows the admin key.
      const { adminKey } = await ensureSingleHostIdentities(server.store, osActor(), computeKey);
      const keyFile = adminKey ? await writeFirstRunKey(path.resolve(config.dataDir), adminKey) : undefined;
      const { ComputeService } = await import('../../compute/compute-service.js');
      const { loadProtocols } = await import('../../compute/protocols.js');
      const protocols = await loadProtocols();
      const compute = new ComputeService({
        url: server.url,
        identifier: localComputeIdentity.identifier,
        key: computeKey,
        name: 'local',
        concurrency: options.concurrency,
        protocols,
        log: (message) => note(`[compute] ${message}`),
      });
      const computeRunning = compute
        .start()
        .catch((error: unknown) => note(`[compute] stopped: ${(error as Error).message}`));
      const { backups } = server;
      // Listening for signals before the banner: a script waits for it, then may signal at once.
      const signalled = untilSignal();
      printUpBanner({
        version: appVersion,
        url: server.url,
        dataDir: path.resolve(config.dataDir),
        database: redactUrl(config.databaseUrl),
        objects: config.objectsUrl,
        backups: backups.schedule
          ? `'${backups.schedule}' (UTC) to ${backups.target.url}; restore drills '${backups.drillSchedule ?? 'off'}'`
          : 'not scheduled (ATHANOR_BACKUP_SCHEDULE=off)',
        console: config.consolePath
          ? `${server.url}${config.consolePath}/`
          : 'off (ATHANOR_CONSOLE_PATH=off)',
        compute: `local service 'local-compute', ${options.concurrency} task(s) at a time (${[...protocols.keys()].join(', ')})`,
      });
      if (adminKey && keyFile) printFirstRunKey({ url: server.url, key: adminKey, keyFile });
      note(
        'try: ./athanor network submit examples/hello-network.json --scope demo-first-run  (Ctrl-C stops)',
      );
      await stopOnSignal(
        async () => {
          await compute.stop();
          await computeRunning;
          await server.shutdown({ note });
        },
        config.shutdownTimeoutMs,
        signalled,
      );
      note('stopped');
    });
}
