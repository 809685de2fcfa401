import { Command, Option } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import type { TaskView } from '../../service/views.js';
import { createNetworkTasks } from '../../client/network-tasks.js';
import { integerOption, userClient, wantsJson } from '../context.js';
import { printJson, printLine } from '../output.js';
import { numberOption, printBulk, printTasks } from '../queue-output.js';
import { addTaskHistoryCommands } from './task-history.js';
import { addTaskLogsCommand } from './task-logs.js';

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
  command
    .command('ensure')
    .argument('<transformation>')
    .requiredOption(
      '-n, --count <n>',
      'how many tasks must exist (complete, waiting or running)',
      integerOption('--count', { min: 0 }),
    )
    .option('--network <network>', "count and put new tasks on this network's hub")
    .option(
      '-w, --weight <weight>',
      'hub weight of new tasks, 0 to 1 (default 0.5)',
      numberOption('--weight'),
    )
    .option('-p, --priority <n>', '1 is the highest (default 10)', integerOption('--priority', { min: 1 }))
    .description('make sure N tasks of a transformation exist, creating only the difference (safe to repeat)')
    .action(
      async (
        key: string,
        options: { count: number; network?: string; weight?: number; priority?: number },
        cmd: Command,
      ) => {
        const answer = await userClient(cmd).ensureTasks(key, {
          count: options.count,
          ...(options.network === undefined ? {} : { network: options.network }),
          ...(options.weight === undefined ? {} : { weight: options.weight }),
          ...(options.priority === undefined ? {} : { priority: options.priority }),
        });
        if (wantsJson(cmd)) printJson(answer);
        else for (const id of answer.created) printLine(id);
        process.stderr.write(`${answer.existing} existed, ${answer.created.length} created\n`);
      },
    );
  addTaskLogsCommand(command);
  return command;
}
