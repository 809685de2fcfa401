import { Command, Option } from 'commander';
import type { ServeOptions } from '../../server/start-server.js';
import { commandConfig, portOption } from '../context.js';
import { note } from '../output.js';
import { stopOnSignal, untilSignal } from '../signals.js';

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
      const config = commandConfig(cmd);
      // The server (Fastify, the store, the drivers) loads only to serve, not for every --help.
      const { startServer } = await import('../../server/start-server.js');
      const server = await startServer(config, { ...options, note });
      // Listening for signals before saying so: a supervisor may signal as soon as the line appears.
      const signalled = untilSignal();
      note(
        `athanor serving the ${options.api === 'all' ? 'user and compute APIs' : `${options.api} API`} on ${server.url}`,
      );
      await stopOnSignal(() => server.shutdown({ note }), config.shutdownTimeoutMs, signalled);
      note('stopped');
    });
}
