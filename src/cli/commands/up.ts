import { Command } from 'commander';
import { osActor, recordAudit } from '../../service/audit.js';
import { addIdentity, listIdentities } from '../../service/identities.js';
import { migrate } from '../../store/migrator.js';
import { openStore } from '../../store/open-store.js';
import { commandConfig, integerOption } from '../context.js';
import { note } from '../output.js';
import { startServer, untilSignal } from './serve.js';

export function upCommand(): Command {
  return new Command('up')
    .description(
      'run Athanor on this host: create and migrate the database, make an admin on first run, serve',
    )
    .option('--host <address>', 'listen address (ATHANOR_HOST, default 127.0.0.1)')
    .option('--port <port>', 'listen port (ATHANOR_PORT, default 8080)', integerOption('--port'))
    .action(async (options: { host?: string; port?: number }, cmd: Command) => {
      const config = commandConfig(cmd);
      const store = await openStore(config, { create: true });
      let adminKey: string | undefined;
      try {
        const applied = await migrate(store, { lockTimeoutMs: config.lockTimeoutMs });
        if (applied.length > 0) {
          note(`database ${store.displayUrl} migrated to ${applied.at(-1)?.id}`);
          await recordAudit(store, {
            actor: osActor(),
            action: 'database.migrate',
            target: store.displayUrl,
            outcome: 'ok',
            details: { applied: applied.map((a) => a.id), by: 'up' },
          });
        }
        if ((await listIdentities(store, 'user')).length === 0) {
          const created = await addIdentity(store, osActor(), {
            kind: 'user',
            identifier: 'admin',
            scopes: ['*-*-*'],
          });
          adminKey = created.generatedKey;
        }
      } finally {
        await store.close();
      }
      const server = await startServer(config, { api: 'all', host: options.host, port: options.port });
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
      note(`athanor is up on ${server.url} (data in ${config.dataDir}); API docs at ${server.url}/docs`);
      note('try: npx athanor network submit examples/hello-network.json --scope demo-first-run');
      const signal = await untilSignal();
      note(`received ${signal}: stopping`);
      await server.close();
    });
}
