import { Command } from 'commander';
import { generateKey } from '../../auth/keys.js';
import { osActor } from '../../service/audit.js';
import { addIdentity, listIdentities, setIdentityKey } from '../../service/identities.js';
import { commandConfig, integerOption, portOption } from '../context.js';
import { note } from '../output.js';
import { startServer, untilSignal } from './serve.js';

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
      let adminKey: string | undefined;
      // The local compute service gets a fresh key at every start; it lives only in this process.
      const computeKey = generateKey();
      const server = await startServer(config, {
        api: 'all',
        host: options.host,
        port: options.port,
        migrate: true,
        backupProfile: 'up',
      });
      // Identities are made once the server listens, so a failed start never swallows the admin key.
      {
        const store = server.store;
        if ((await listIdentities(store, 'user')).length === 0) {
          const created = await addIdentity(store, osActor(), {
            kind: 'user',
            identifier: 'admin',
            scopes: ['*-*-*'],
          });
          adminKey = created.generatedKey;
        }
        const local = { kind: 'compute' as const, identifier: 'local-compute' };
        if ((await listIdentities(store, 'compute')).some((i) => i.identifier === local.identifier)) {
          await setIdentityKey(store, osActor(), local, computeKey);
        } else {
          await addIdentity(store, osActor(), { ...local, key: computeKey, scopes: ['*-*-*'] });
        }
      }
      if (adminKey) {
        note('');
        note("First run: created the user identity 'admin' with every scope (*-*-*). Its key is shown");
        note('only this once; paste these lines into your shell to use the CLI:');
        note('');
        note(`  export ATHANOR_URL=${server.url}`);
        note('  export ATHANOR_ID=admin');
        note(`  export ATHANOR_KEY=${adminKey}`);
        note('');
      }
      const { ComputeService } = await import('../../compute/compute-service.js');
      const { loadProtocols } = await import('../../compute/protocols.js');
      const compute = new ComputeService({
        url: server.url,
        identifier: 'local-compute',
        key: computeKey,
        name: 'local',
        concurrency: options.concurrency,
        protocols: await loadProtocols(),
        log: (message) => note(`[compute] ${message}`),
      });
      const computeRunning = compute
        .start()
        .catch((error: unknown) => note(`[compute] stopped: ${(error as Error).message}`));
      const { backups } = server;
      note(
        backups.schedule
          ? `backups: '${backups.schedule}' (UTC) to ${backups.targetUrl}; restore drills '${backups.drillSchedule ?? 'off'}'`
          : 'backups: not scheduled (ATHANOR_BACKUP_SCHEDULE=off)',
      );
      note(`athanor is up on ${server.url} (data in ${config.dataDir}); API docs at ${server.url}/docs`);
      note('try: npx athanor network submit examples/hello-network.json --scope demo-first-run');
      const signal = await untilSignal();
      note(`received ${signal}: stopping`);
      await compute.stop();
      await computeRunning;
      await server.close();
    });
}
