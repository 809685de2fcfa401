import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { NetworkState, TransformationInput } from '../../client/user-client.js';
import { AthanorError } from '../../domain/errors.js';
import { networkStates } from '../../domain/network-state.js';
import { parseDuration } from '../../domain/parse-duration.js';
import { userClient, wantsJson } from '../context.js';
import { printJson, printLine, printTable } from '../output.js';
import { numberOption } from '../queue-output.js';
import { describeCounts, watchNetwork } from '../watch-network.js';

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
