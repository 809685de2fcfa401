import { createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import type { NetworkState, TransformationInput } from '../../client/user-client.js';
import { AthanorError } from '../../domain/errors.js';
import type { TaskView } from '../../service/views.js';
import { createNetworkTasks } from '../../client/network-tasks.js';
import { parseDuration } from '../../ops/schedule/parse-duration.js';
import { integerOption, userClient, wantsJson } from '../context.js';
import { describeCounts, watchNetwork } from '../watch-network.js';
import { printJson, printLine, printTable } from '../output.js';
import { resultDownloadCommand } from './result-download.js';
import { addTaskHistoryCommands } from './task-history.js';
import { networkStates } from '../../domain/network-state.js';

const short = (key: string | null) => (key === null ? '-' : key.length > 20 ? `${key.slice(0, 16)}…` : key);

function numberOption(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n))
      throw new AthanorError('invalid_argument', `${flag} takes a number, got '${value}'`);
    return n;
  };
}

/** Reads a network file: `{name, scope?, transformations: [{name, protocol, inputs}]}`. */
function readNetworkFile(file: string): {
  name: string;
  scope?: string;
  transformations: TransformationInput[];
} {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new AthanorError(
      'invalid_argument',
      `cannot read network file ${file}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const network = parsed as { name?: unknown; transformations?: unknown };
  if (typeof network.name !== 'string' || !Array.isArray(network.transformations)) {
    throw new AthanorError(
      'invalid_argument',
      `${file} must hold {"name": "...", "transformations": [{"name", "protocol", "inputs"}, ...]}`,
    );
  }
  return parsed as { name: string; scope?: string; transformations: TransformationInput[] };
}

function printTasks(tasks: readonly TaskView[]): void {
  printTable(
    tasks,
    [
      { header: 'TASK', value: (t) => t.id },
      { header: 'STATUS', value: (t) => t.status },
      { header: 'PRIORITY', value: (t) => String(t.priority) },
      { header: 'ATTEMPTS', value: (t) => String(t.attempts) },
      { header: 'TRANSFORMATION', value: (t) => short(t.transformation) },
      { header: 'EXTENDS', value: (t) => short(t.extends) },
    ],
    'no tasks',
  );
}

interface CreateOptions {
  network?: string;
  action?: boolean;
  weight?: number;
  count: number;
  extends?: string;
  priority?: number;
}

function reportCreated(count: number, options: CreateOptions): void {
  process.stderr.write(
    options.action
      ? `created ${count} task(s) and put them on the hub of ${options.network}; follow them with 'athanor network watch ${options.network}'\n`
      : `created ${count} task(s); put them on a hub with 'athanor task action <network> <task…>'\n`,
  );
}

function printBulk(answers: readonly { task: string; result: unknown; error?: string }[]): void {
  printTable(answers, [
    { header: 'TASK', value: (a) => a.task },
    { header: 'RESULT', value: (a) => (a.result === null ? 'not found' : String(a.result)) },
    { header: 'NOTE', value: (a) => a.error ?? '' },
  ]);
}

export function networkCommand(): Command {
  const command = new Command('network').description('submit and steer networks (user API)');

  command
    .command('submit')
    .description('submit a network from a JSON file; submitting it again returns the same key')
    .argument('<file>', 'JSON: {"name", "transformations": [{"name", "protocol", "inputs"}]}')
    .option('-s, --scope <scope>', 'org-campaign-project to submit into (or "scope" in the file)')
    .addOption(new Option('--state <state>', 'initial state').choices([...networkStates]))
    .action(async (file: string, options: { scope?: string; state?: NetworkState }, cmd: Command) => {
      const network = readNetworkFile(file);
      const scope = options.scope ?? network.scope;
      if (!scope)
        throw new AthanorError(
          'invalid_argument',
          'give --scope org-campaign-project (or "scope" in the file)',
        );
      const result = await userClient(cmd).submitNetwork({
        scope,
        name: network.name,
        transformations: network.transformations,
        ...(options.state ? { state: options.state } : {}),
      });
      if (wantsJson(cmd)) printJson(result);
      else {
        printLine(result.key);
        process.stderr.write(
          `${result.created ? 'submitted' : 'already submitted'}: network '${network.name}' with ` +
            `${result.transformations.length} transformation(s) in ${scope}\n`,
        );
      }
    });

  command
    .command('list')
    .description('list networks in your scopes')
    .option('-s, --scope <scope>', 'only this scope (wildcards allowed)')
    .addOption(new Option('--state <state>', 'only this state').choices([...networkStates]))
    .action(async (options: { scope?: string; state?: NetworkState }, cmd: Command) => {
      const list = await userClient(cmd).listNetworks(options);
      if (wantsJson(cmd)) printJson(list);
      else {
        printTable(
          list,
          [
            { header: 'NETWORK', value: (n) => n.key },
            { header: 'NAME', value: (n) => n.name },
            { header: 'SCOPE', value: (n) => n.scope },
            { header: 'STATE', value: (n) => n.state },
            { header: 'WEIGHT', value: (n) => String(n.weight) },
          ],
          'no networks',
        );
      }
    });

  command
    .command('show')
    .argument('<network>')
    .description('one network, with its transformations')
    .action(async (key: string, _options: unknown, cmd: Command) => {
      const client = userClient(cmd);
      const network = await client.getNetwork(key);
      const transformations = await client.networkTransformations(key);
      if (wantsJson(cmd)) printJson({ ...network, transformations });
      else {
        printLine(
          `${network.key}\n  name ${network.name}\n  scope ${network.scope}\n  state ${network.state}  weight ${network.weight}`,
        );
        printTable(transformations, [
          { header: 'TRANSFORMATION', value: (t) => t.key },
          { header: 'NAME', value: (t) => t.name },
          { header: 'PROTOCOL', value: (t) => t.protocol },
        ]);
      }
    });

  command
    .command('status')
    .argument('<network>')
    .description("task counts by status over a network's transformations")
    .action(async (key: string, _options: unknown, cmd: Command) => {
      const counts = await userClient(cmd).networkStatus(key);
      if (wantsJson(cmd)) printJson(counts);
      else
        printTable(
          Object.entries(counts),
          [
            { header: 'STATUS', value: ([s]) => s },
            { header: 'TASKS', value: ([, n]) => String(n) },
          ],
          'no tasks',
        );
    });

  command
    .command('watch')
    .argument('<network>')
    .option('--interval <seconds>', 'seconds between looks (default 1)', numberOption('--interval'), 1)
    .option('--timeout <duration>', 'give up after this long, e.g. 10m (default: until it finishes)')
    .description('follow a network with a progress bar until every task has settled; exit 1 if any errored')
    .action(async (key: string, options: { interval: number; timeout?: string }, cmd: Command) => {
      if (!(options.interval > 0))
        throw new AthanorError(
          'invalid_argument',
          `--interval takes a number of seconds above 0, got ${options.interval}`,
        );
      const timeoutMs =
        options.timeout === undefined ? undefined : parseDuration(options.timeout, '--timeout');
      const progress = await watchNetwork(userClient(cmd), key, {
        intervalMs: options.interval * 1000,
        timeoutMs,
      });
      if (wantsJson(cmd)) printJson(progress.counts);
      else printLine(`network ${key} finished: ${describeCounts(progress)}`);
      const failed = progress.counts.error ?? 0;
      if (failed > 0) {
        process.stderr.write(
          `${failed} task(s) failed: see 'athanor task list --network ${key} --status error' and 'athanor result list <task>'\n`,
        );
        process.exitCode = 1;
      }
    });

  command
    .command('state')
    .argument('<network...>')
    .addOption(new Option('--set <state>', 'the new state').choices([...networkStates]).makeOptionMandatory())
    .description('set the state of networks (only active networks are claimable)')
    .action(async (keys: string[], options: { set: NetworkState }, cmd: Command) => {
      const answers = await userClient(cmd).setNetworkState(keys, options.set);
      if (wantsJson(cmd)) printJson(answers);
      else
        printTable(answers, [
          { header: 'NETWORK', value: (a) => a.key },
          { header: 'STATE', value: (a) => a.state ?? 'not found' },
        ]);
      if (answers.some((a) => a.state === null)) process.exitCode = 1;
    });

  command
    .command('weight')
    .argument('<network>')
    .argument('<weight>', 'from 0 (paused) to 1', numberOption('weight'))
    .description("set a network hub's weight")
    .action(async (key: string, weight: number, _options: unknown, cmd: Command) => {
      const network = await userClient(cmd).setNetworkWeight(key, weight);
      if (wantsJson(cmd)) printJson(network);
      else printLine(`network ${network.key} weight ${network.weight}`);
    });

  return command;
}

export function taskCommand(): Command {
  const command = new Command('task').description('create and steer tasks (user API)');

  command
    .command('create')
    .argument('[transformation]', 'the transformation; omit with --network for all of its transformations')
    .option('--network <network>', 'create tasks for every transformation of this network')
    .option('--action', 'also put the new tasks on the hub of --network, so compute services claim them')
    .option(
      '-w, --weight <weight>',
      'hub weight with --action, 0 to 1 (default 0.5)',
      numberOption('--weight'),
    )
    .option('-n, --count <n>', 'how many tasks (per transformation)', integerOption('--count', { min: 1 }), 1)
    .option('--extends <task>', 'a task of the same transformation to continue from')
    .option('-p, --priority <n>', '1 is the highest (default 10)', integerOption('--priority', { min: 1 }))
    .description('create tasks for a transformation, or for every transformation of a network')
    .action(async (key: string | undefined, options: CreateOptions, cmd: Command) => {
      const client = userClient(cmd);
      if (key === undefined && options.network === undefined)
        throw new AthanorError('invalid_argument', 'name a transformation, or pass --network <network>');
      if (options.action && options.network === undefined)
        throw new AthanorError('invalid_argument', '--action needs --network: the hub to put the tasks on');
      if (options.weight !== undefined && !options.action)
        throw new AthanorError('invalid_argument', '--weight applies only with --action');
      if (key === undefined) {
        if (options.extends !== undefined)
          throw new AthanorError('invalid_argument', '--extends needs the transformation it continues');
        const created = await createNetworkTasks(client, options.network ?? '', options);
        if (wantsJson(cmd)) printJson(created);
        else for (const c of created) printLine(c.task);
        reportCreated(created.length, options);
        if (created.some((c) => c.actioned === false)) process.exitCode = 1;
        return;
      }
      const created = await client.createTasks(key, {
        count: options.count,
        ...(options.extends === undefined ? {} : { extends: options.extends }),
        ...(options.priority === undefined ? {} : { priority: options.priority }),
      });
      const actioned =
        options.action && options.network !== undefined
          ? await client.actionTasks(
              options.network,
              created.map((t) => t.id),
              options.weight,
            )
          : undefined;
      if (wantsJson(cmd))
        printJson(
          actioned ? created.map((t, i) => ({ ...t, actioned: actioned[i]?.result === true })) : created,
        );
      else for (const task of created) printLine(task.id);
      if (actioned) reportCreated(created.length, options);
      if (actioned?.some((a) => a.result !== true)) process.exitCode = 1;
    });

  command
    .command('list')
    .option('-s, --scope <scope>', 'only this scope (wildcards allowed)')
    .option('--network <network>', "only tasks of this network's transformations")
    .option('--transformation <key>', 'only tasks of this transformation')
    .option('--status <status>', 'only this status')
    .description('list tasks in your scopes')
    .action(
      async (
        options: { scope?: string; network?: string; transformation?: string; status?: TaskView['status'] },
        cmd: Command,
      ) => {
        const tasks = await userClient(cmd).listTasks(options);
        if (wantsJson(cmd)) printJson(tasks);
        else printTasks(tasks);
      },
    );

  command
    .command('action')
    .argument('<network>')
    .argument('<task...>')
    .option('-w, --weight <weight>', 'weight on the hub, 0 to 1 (default 0.5)', numberOption('--weight'))
    .description("put tasks on a network's hub so compute services can claim them")
    .action(async (network: string, tasks: string[], options: { weight?: number }, cmd: Command) => {
      const answers = await userClient(cmd).actionTasks(network, tasks, options.weight);
      if (wantsJson(cmd)) printJson(answers);
      else printBulk(answers);
      if (answers.some((a) => a.result !== true)) process.exitCode = 1;
    });

  command
    .command('cancel')
    .argument('<network>')
    .argument('<task...>')
    .description("take tasks off a network's hub")
    .action(async (network: string, tasks: string[], _options: unknown, cmd: Command) => {
      const answers = await userClient(cmd).cancelTasks(network, tasks);
      if (wantsJson(cmd)) printJson(answers);
      else printBulk(answers);
    });

  command
    .command('status')
    .argument('<task...>')
    .addOption(
      new Option('--set <status>', 'set it (invalid and deleted cascade to extending tasks)').choices([
        'waiting',
        'invalid',
        'deleted',
      ]),
    )
    .option('--reason <text>', 'with --set: why, kept on each task and shown by `task history`')
    .description('show, or with --set change, the status of tasks')
    .action(
      async (
        tasks: string[],
        options: { set?: 'waiting' | 'invalid' | 'deleted'; reason?: string },
        cmd: Command,
      ) => {
        const client = userClient(cmd);
        if (options.reason !== undefined && !options.set) {
          throw new AthanorError('invalid_argument', '--reason goes with --set <status>');
        }
        if (!options.set) {
          const views = await Promise.all(tasks.map((t) => client.getTask(t)));
          if (wantsJson(cmd)) printJson(views);
          else printTasks(views);
          return;
        }
        const answer = await client.setTaskStatus(tasks, options.set, options.reason);
        if (wantsJson(cmd)) printJson(answer);
        else {
          printBulk(answer.tasks);
          if (answer.cascaded.length)
            process.stderr.write(`also ${options.set}: ${answer.cascaded.length} extending task(s)\n`);
        }
        if (answer.tasks.some((a) => a.error !== undefined)) process.exitCode = 1;
      },
    );

  command
    .command('priority')
    .argument('<task...>')
    .requiredOption('--set <n>', '1 is the highest', integerOption('--set', { min: 1 }))
    .description('set the priority of tasks')
    .action(async (tasks: string[], options: { set: number }, cmd: Command) => {
      const answers = await userClient(cmd).setTaskPriority(tasks, options.set);
      if (wantsJson(cmd)) printJson(answers);
      else printBulk(answers);
    });

  addTaskHistoryCommands(command);
  return command;
}

export function resultCommand(): Command {
  const command = new Command('result').description("list and download tasks' results (user API)");

  command
    .command('list')
    .argument('<task>')
    .description("a task's results, one per attempt")
    .action(async (task: string, _options: unknown, cmd: Command) => {
      const results = await userClient(cmd).taskResults(task);
      if (wantsJson(cmd)) printJson(results);
      else
        printTable(
          results,
          [
            { header: 'RESULT', value: (r) => r.id },
            { header: 'ATTEMPT', value: (r) => String(r.attempt) },
            { header: 'OUTCOME', value: (r) => r.outcome },
            { header: 'BYTES', value: (r) => String(r.sizeBytes ?? '-') },
            { header: 'ERROR', value: (r) => (r.error ?? '').split('\n')[0] ?? '' },
          ],
          'no results',
        );
    });

  command
    .command('get')
    .argument('<result>')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .description("download a result's bytes (streamed)")
    .action(async (id: string, options: { output?: string }, cmd: Command) => {
      const stream = await userClient(cmd).downloadResult(id);
      await pipeline(stream, options.output ? createWriteStream(options.output) : process.stdout);
    });

  command.addCommand(resultDownloadCommand());

  return command;
}
