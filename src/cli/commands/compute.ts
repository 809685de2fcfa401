import { Command } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import { collect, commandConfig, integerOption } from '../context.js';
import { note } from '../output.js';
import { untilSignal } from '../signals.js';
import { computeManagerCommand } from './compute-manager.js';
import { durationOption, scopeOption } from '../compute-options.js';

interface RunOptions {
  url?: string;
  id?: string;
  key?: string;
  name?: string;
  concurrency: number;
  scope?: string[];
  protocols?: string[];
  allowExec?: boolean;
  graceMs: number;
  excludeScope?: string[];
  maxTasks?: number;
  maxTime?: number;
  maxIdle?: number;
  manager?: string;
  launch?: string;
  uploadRetry?: number;
  maxLogBytes: number;
}

export function computeCommand(): Command {
  const command = new Command('compute').description('run a compute service that pulls and executes tasks');
  command
    .command('run')
    .description('register, claim, execute, report; SIGTERM finishes or releases held tasks and deregisters')
    .option('--url <url>', 'server URL (ATHANOR_URL, default http://127.0.0.1:8080)')
    .option('--id <identity>', 'compute identity (ATHANOR_COMPUTE_ID, else ATHANOR_ID)')
    .option(
      '--key <key>',
      'its key (ATHANOR_COMPUTE_KEY or ATHANOR_COMPUTE_KEY_FILE; prefer those to this flag)',
    )
    .option('--name <name>', 'a name for this service in listings')
    .option(
      '-c, --concurrency <n>',
      'tasks run at once (1 to 1000)',
      integerOption('--concurrency', { min: 1, max: 1000 }),
      1,
    )
    .option('-s, --scope <scope>', 'only claim tasks in this scope (repeatable)', scopeOption('--scope'))
    .option(
      '--exclude-scope <scope>',
      'never claim tasks in this scope, wildcards allowed (repeatable)',
      scopeOption('--exclude-scope'),
    )
    .option(
      '--max-tasks <n>',
      'claim this many tasks in all, let them finish, then exit 0 (for batch schedulers)',
      integerOption('--max-tasks', { min: 1 }),
    )
    .option(
      '--max-time <duration>',
      'stop claiming after this long (e.g. 90m, 12h), finish or release what is held, exit 0',
      durationOption('--max-time'),
    )
    .option(
      '--max-idle <duration>',
      'exit 0 after this long with nothing to run (e.g. 10m); what compute managers start their services with',
      durationOption('--max-idle'),
    )
    .option('--manager <id>', 'the compute manager that started this service (set by the manager)')
    .option('--launch <id>', "this service's launch id within its manager (set by the manager)")
    .option(
      '--upload-retry <duration>',
      'how long a result upload retries while the server is unreachable before giving up (default 10m)',
      durationOption('--upload-retry'),
    )
    .option(
      '--max-log-bytes <n>',
      "cap on one attempt's log; the rest is dropped and the cut is marked (default 16 MiB)",
      integerOption('--max-log-bytes', { min: 1024 }),
      16 * 1024 * 1024,
    )
    .option(
      '--protocols <file>',
      'a plug-in module exporting executors by protocol name (repeatable)',
      collect,
    )
    .option('--allow-exec', 'offer the exec protocol, which runs commands named by transformations')
    .option(
      '--grace-ms <ms>',
      'on stop, how long tasks in flight may finish before release',
      integerOption('--grace-ms'),
      30_000,
    )
    .action(async (options: RunOptions, cmd: Command) => {
      if (options.launch && !options.manager)
        throw new AthanorError(
          'invalid_argument',
          '--launch needs --manager: it names a launch of that manager',
        );
      const config = commandConfig(cmd);
      const identifier = options.id ?? config.computeId ?? config.id;
      const key = options.key ?? config.computeKey ?? config.key;
      if (!identifier || !key) {
        throw new AthanorError(
          'invalid_argument',
          'set ATHANOR_COMPUTE_ID and ATHANOR_COMPUTE_KEY (or --id/--key) to a compute identity and its key',
        );
      }
      const { ComputeService } = await import('../../compute/compute-service.js');
      const { loadProtocols } = await import('../../compute/protocols.js');
      const protocols = await loadProtocols({ allowExec: options.allowExec, pluginFiles: options.protocols });
      const service = new ComputeService({
        url: options.url ?? config.url,
        identifier,
        key,
        name: options.name,
        concurrency: options.concurrency,
        scopes: options.scope,
        excludeScopes: options.excludeScope,
        maxTasks: options.maxTasks,
        maxTimeMs: options.maxTime,
        maxIdleMs: options.maxIdle,
        managed: options.manager
          ? { manager: options.manager, launch: options.launch ?? 'unnamed' }
          : undefined,
        uploadRetryMs: options.uploadRetry,
        maxLogBytes: options.maxLogBytes,
        protocols,
        stopGraceMs: options.graceMs,
        log: (message) => note(`[compute] ${message}`),
      });
      note(`[compute] protocols: ${[...protocols.keys()].join(', ')}; concurrency ${options.concurrency}`);
      const running = service.start();
      const stopped = untilSignal().then(async (signal) => {
        note(`[compute] received ${signal}: no new claims; finishing tasks in flight`);
        await service.stop();
      });
      await Promise.race([running, stopped]);
      await running;
      note(`[compute] stopped after ${service.completed} completed and ${service.failed} failed task(s)`);
    });
  command.addCommand(computeManagerCommand());
  return command;
}
