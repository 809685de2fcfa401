import { Command, Option } from 'commander';
import os from 'node:os';
import { childEnvironment } from '../../config/child-env.js';
import { AthanorError } from '../../domain/errors.js';
import { osActor } from '../../service/audit.js';
import * as managers from '../../service/managers.js';
import { collect, commandConfig, integerOption, wantsJson, withStore } from '../context.js';
import { note, printJson, printLine, printTable } from '../output.js';
import { createDriver, printManager } from '../manager-support.js';
import { untilSignal } from '../signals.js';
import { durationOption, scopeOption } from '../compute-options.js';

export const managerDrivers = ['local', 'slurm', 'kubernetes'] as const;

export interface ManagerRunOptions {
  driver: string;
  url?: string;
  id?: string;
  key?: string;
  name?: string;
  maxServices: number;
  minServices: number;
  scope?: string[];
  idleTimeout: number;
  interval?: number;
  registerTimeout?: number;
  concurrency: number;
  allowExec?: boolean;
  protocols?: string[];
  slurmTemplate?: string;
  slurmAccount?: string;
  slurmPartition?: string;
  slurmTime?: string;
  slurmGres?: string;
  slurmOption?: string[];
  slurmOutput?: string;
  kubeNamespace: string;
  kubeManifest?: string;
  kubeImage?: string;
  kubeSecret?: string;
  kubeUrl?: string;
}

function runCommand(): Command {
  return new Command('run')
    .description('start and stop compute services in proportion to the claimable work in your scopes')
    .addOption(
      new Option('--driver <driver>', 'where services run').choices(managerDrivers).makeOptionMandatory(),
    )
    .option('--url <url>', 'server URL (ATHANOR_URL)')
    .option('--id <identity>', 'compute identity (ATHANOR_COMPUTE_ID); its services run as it too')
    .option('--key <key>', 'its key (ATHANOR_COMPUTE_KEY or ATHANOR_COMPUTE_KEY_FILE; prefer those)')
    .option('--name <name>', 'this manager’s name; a restart under the same name takes its services back')
    .option(
      '--max-services <n>',
      'never run more services than this',
      integerOption('--max-services', { min: 1, max: 100_000 }),
      1,
    )
    .option(
      '--min-services <n>',
      'keep at least this many running, work or not',
      integerOption('--min-services'),
      0,
    )
    .option(
      '-s, --scope <scope>',
      'serve only this scope (repeatable; default: every scope of the identity)',
      scopeOption('--scope'),
    )
    .option(
      '--idle-timeout <duration>',
      'services beyond the minimum exit after this long without work',
      durationOption('--idle-timeout'),
      600_000,
    )
    .option(
      '--interval <duration>',
      'between cycles (ATHANOR_MANAGER_INTERVAL_MS, default 5s)',
      durationOption('--interval'),
    )
    .option(
      '--register-timeout <duration>',
      'cancel a service not registered after this long (default 2m)',
      durationOption('--register-timeout'),
    )
    .option(
      '-c, --concurrency <n>',
      'tasks each service runs at once',
      integerOption('--concurrency', { min: 1, max: 1000 }),
      1,
    )
    .option('--allow-exec', 'services offer the exec protocol')
    .option('--protocols <file>', 'services load this plug-in module (repeatable)', collect)
    .option(
      '--slurm-template <file>',
      'batch script template ({{options}}, {{command}}, {{manager}}, {{job_name}}, {{launch}})',
    )
    .option('--slurm-account <account>', 'sbatch --account')
    .option('--slurm-partition <partition>', 'sbatch --partition')
    .option('--slurm-time <time>', 'sbatch --time, e.g. 4:00:00 (SIGTERM comes 120 s before it)')
    .option('--slurm-gres <gres>', 'sbatch --gres, e.g. gpu:1')
    .option('--slurm-option <option>', 'a further #SBATCH option, e.g. --mem=4G (repeatable)', collect)
    .option('--slurm-output <file>', 'sbatch --output (%j is the job id)')
    .option('--kube-namespace <ns>', 'namespace of the Jobs', 'default')
    .option(
      '--kube-manifest <file>',
      'the compute Deployment to render Jobs from (default: deploy/kubernetes/base)',
    )
    .option('--kube-image <image>', 'container image (default: the manifest’s)')
    .option('--kube-secret <name>', 'Secret holding the compute key (default: the manifest’s)')
    .option('--kube-url <url>', 'server URL as seen from inside the cluster (default: the manifest’s)')
    .action(async (options: ManagerRunOptions, cmd: Command) => {
      if (options.minServices > options.maxServices)
        throw new AthanorError(
          'invalid_argument',
          `--min-services ${options.minServices} is above --max-services ${options.maxServices}`,
        );
      const config = commandConfig(cmd);
      const identifier = options.id ?? config.computeId ?? config.id;
      const key = options.key ?? config.computeKey ?? config.key;
      if (!identifier || !key)
        throw new AthanorError(
          'invalid_argument',
          'set ATHANOR_COMPUTE_ID and ATHANOR_COMPUTE_KEY (or --id/--key) to a compute identity and its key',
        );
      const url = options.url ?? config.url;
      const name = options.name ?? `manager@${os.hostname()}`;
      // The services get the identity through their environment, never on a command line.
      const env = childEnvironment({
        ATHANOR_URL: url,
        ATHANOR_COMPUTE_ID: identifier,
        ATHANOR_COMPUTE_KEY: key,
        ATHANOR_COMPUTE_KEY_FILE: undefined,
      });
      const driver = await createDriver(options, { name, identifier, env, stateDir: config.managerStateDir });
      const { ComputeManager } = await import('../../compute/manager.js');
      const manager = new ComputeManager({
        url,
        identifier,
        key,
        name,
        driver,
        scopes: options.scope,
        minServices: options.minServices,
        maxServices: options.maxServices,
        idleTimeoutMs: options.idleTimeout,
        intervalMs: options.interval ?? config.managerIntervalMs,
        registerTimeoutMs: options.registerTimeout ?? config.managerRegisterTimeoutMs,
        concurrency: options.concurrency,
        serviceArgs: [
          ...(options.allowExec ? ['--allow-exec'] : []),
          ...(options.protocols ?? []).flatMap((p) => ['--protocols', p]),
        ],
        log: (message) => note(`[manager] ${message}`),
      });
      const running = manager.start();
      const stopped = untilSignal().then(async (signal) => {
        note(`[manager] received ${signal}: deregistering; services end by themselves`);
        await manager.stop();
      });
      await Promise.race([running, stopped]);
      await running;
    });
}

const Ref = (cmd: Command) => cmd.argument('<manager>', 'manager name or id');

/** `compute manager run|list|status|stop|pause|resume|cap`. */
export function computeManagerCommand(): Command {
  const command = new Command('manager').description(
    'compute managers: start and stop compute services as work arrives and drains',
  );
  command.addCommand(runCommand());

  command
    .command('list')
    .description('managers and what they run (from the state store)')
    .option('--all', 'also stopped and expired ones')
    .action(async (options: { all?: boolean }, cmd: Command) => {
      const views = await withStore(cmd, (store) => managers.listManagers(store, { all: options.all }));
      if (wantsJson(cmd)) return printJson(views);
      printTable(views, [
        { header: 'NAME', value: (v) => v.name },
        { header: 'IDENTITY', value: (v) => v.identifier },
        { header: 'DRIVER', value: (v) => v.driver },
        { header: 'STATE', value: (v) => `${v.state}${v.paused ? ' (paused)' : ''}` },
        {
          header: 'SERVICES',
          value: (v) => `${v.launches.length}/${Math.min(v.maxServices, v.cap ?? Infinity)}`,
        },
        { header: 'LAST DECISION', value: (v) => v.decisions.at(-1)?.reason ?? '' },
      ]);
    });

  Ref(command.command('status'))
    .description('one manager: its services and why it decided what it did')
    .action(async (ref: string, _options: unknown, cmd: Command) => {
      const view = await withStore(cmd, (store) => managers.getManager(store, ref));
      if (wantsJson(cmd)) printJson(view);
      else printManager(view);
    });

  const control = (verb: string, description: string, controls: managers.ManagerControls) =>
    Ref(command.command(verb))
      .description(description)
      .action(async (ref: string, _options: unknown, cmd: Command) => {
        const view = await withStore(cmd, (store) =>
          managers.controlManager(store, osActor(), ref, controls),
        );
        if (wantsJson(cmd)) printJson(view);
        else printLine(`${verb}: manager ${view.name} (${view.id}); it acts on it at its next cycle`);
      });
  control('stop', 'ask a manager to drain its services and exit', { stop: true });
  control('pause', 'a manager starts no service until resumed (running ones go on)', { paused: true });
  control('resume', 'undo pause', { paused: false });

  Ref(command.command('cap'))
    .argument('<n>', "at most this many services (below its --max-services), or 'none'")
    .description('limit a manager below its maximum; services above the cap drain')
    .action(async (ref: string, n: string, _options: unknown, cmd: Command) => {
      const cap = n === 'none' ? null : integerOption('cap')(n);
      const view = await withStore(cmd, (store) => managers.controlManager(store, osActor(), ref, { cap }));
      if (wantsJson(cmd)) printJson(view);
      else printLine(`manager ${view.name} capped at ${view.cap ?? 'none'}`);
    });
  return command;
}
