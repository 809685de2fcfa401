import { Command } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import { userClient, wantsJson } from '../context.js';
import { printJson, printLine } from '../output.js';

function parseParams(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AthanorError('invalid_argument', `--params must be JSON, e.g. '{"n": 5}'`);
  }
}

export function strategyCommand(): Command {
  const command = new Command('strategy').description('let the server steer a network (user API)');
  command
    .command('list')
    .description('the strategies this server runs, with their parameters')
    .action(async (_options: unknown, cmd: Command) => {
      const list = await userClient(cmd).listStrategies();
      if (wantsJson(cmd)) return printJson(list);
      for (const s of list) printLine(`${s.name}  ${s.description}`);
    });
  command
    .command('set')
    .argument('<network>')
    .argument('<name>', "the strategy (see 'athanor strategy list')")
    .option('--params <json>', 'its parameters as JSON')
    .description("name the strategy of a network; the server runs it whenever the network's results change")
    .action(async (network: string, name: string, options: { params?: string }, cmd: Command) => {
      const view = await userClient(cmd).setStrategy(network, name, parseParams(options.params));
      if (wantsJson(cmd)) printJson(view);
      else printLine(`${network}: ${view.name} ${JSON.stringify(view.params)} (${view.state})`);
    });
  command
    .command('show')
    .argument('<network>')
    .description("the network's strategy, its state and its last error")
    .action(async (network: string, _options: unknown, cmd: Command) => {
      const view = await userClient(cmd).getStrategy(network);
      if (wantsJson(cmd)) return printJson(view);
      printLine(`${view.name} ${JSON.stringify(view.params)}  ${view.state}  runs ${view.runs}`);
      if (view.lastError) printLine(`last error: ${view.lastError}`);
    });
  command
    .command('preview')
    .argument('<network>')
    .description('what the strategy would do now (nothing is done)')
    .action(async (network: string, _options: unknown, cmd: Command) => {
      const preview = await userClient(cmd).previewStrategy(network);
      if (wantsJson(cmd)) return printJson(preview);
      if (preview.actions.length === 0) printLine('nothing to do');
      for (const action of preview.actions) printLine(JSON.stringify(action));
    });
  command
    .command('remove')
    .argument('<network>')
    .description('stop steering the network (tasks it created stay)')
    .action(async (network: string, _options: unknown, cmd: Command) => {
      const removed = await userClient(cmd).removeStrategy(network);
      if (wantsJson(cmd)) printJson(removed);
      else printLine(`removed the strategy of ${network}`);
    });
  return command;
}
