import { Command } from 'commander';
import type { SettingName } from '../../config/resolve-config.js';
import { defaultText, settingSpecs } from '../../config/resolve-config.js';
import { AthanorError } from '../../domain/errors.js';
import type { DeploySettingName, SwitchOutcome } from '../../ops/deploy/index.js';
import {
  deployLog,
  deploySettingNames,
  deployStatus,
  parseColour,
  resolveDeploySettings,
  rollbackColour,
  switchColour,
} from '../../ops/deploy/index.js';
import { osActor } from '../../service/audit.js';
import { commandConfig, integerOption, wantsJson, withStore } from '../context.js';
import { note, printJson, printLine, printTable } from '../output.js';

const flagOf: Readonly<Record<DeploySettingName, string>> = {
  blueUrl: '--blue-url <url>',
  greenUrl: '--green-url <url>',
  upstreamFile: '--upstream-file <file>',
  testCommand: '--test-command <command>',
  reloadCommand: '--reload-command <command>',
  drainTimeoutMs: '--drain-timeout-ms <ms>',
  proxyPidFile: '--proxy-pid-file <file>',
};

function withSettings(command: Command): Command {
  for (const [name, setting] of Object.entries(deploySettingNames) as [DeploySettingName, SettingName][])
    command.option(
      flagOf[name],
      `${settingSpecs[setting].description} (${settingSpecs[setting].env}, default ${defaultText(setting)})`,
    );
  return command;
}

function printOutcome(cmd: Command, outcome: SwitchOutcome): void {
  if (wantsJson(cmd)) printJson(outcome);
  else if (outcome.switched)
    printLine(
      `${outcome.to} (${outcome.toVersion}) is live` +
        (outcome.from ? `; ${outcome.from} (${outcome.fromVersion}) drained in ${outcome.drainedMs} ms` : ''),
    );
  else printLine(`${outcome.to} was live already`);
}

export function deployCommand(): Command {
  const command = new Command('deploy').description(
    'blue/green releases on one host: two colours of athanor serve behind nginx, switched atomically',
  );
  withSettings(
    command
      .command('status')
      .description(
        "each colour's address, version, schema, readiness and requests in flight; exit 3 if the live one is not ready",
      ),
  ).action(async (options: Record<DeploySettingName, string | undefined>, cmd: Command) => {
    const status = await deployStatus(resolveDeploySettings(commandConfig(cmd), options));
    if (wantsJson(cmd)) printJson(status);
    else {
      printTable(status.colours, [
        { header: 'COLOUR', value: (c) => c.colour + (c.live ? ' (live)' : '') },
        { header: 'URL', value: (c) => c.url },
        { header: 'VERSION', value: (c) => c.version ?? '-' },
        { header: 'SCHEMA', value: (c) => (c.schema === undefined ? '-' : `${c.schema}/${c.releaseSchema}`) },
        { header: 'READY', value: (c) => (c.ready ? 'yes' : `no: ${c.code}`) },
        { header: 'IN FLIGHT', value: (c) => (c.inFlight === undefined ? '-' : String(c.inFlight)) },
      ]);
      if (!status.live)
        printLine(`no colour is live yet: ${status.upstreamFile} was not written by deploy switch`);
    }
    const live = status.colours.find((c) => c.live);
    if (live && !live.ready) process.exitCode = 3;
  });
  withSettings(
    command
      .command('switch')
      .argument('<colour>', 'blue or green')
      .description('send traffic to a ready colour, then wait until the other has no request in flight'),
  ).action(async (colour: string, options: Record<DeploySettingName, string | undefined>, cmd: Command) => {
    const target = parseColour(colour);
    const settings = resolveDeploySettings(commandConfig(cmd), options);
    const outcome = await withStore(cmd, (store) =>
      switchColour(store, settings, target, { actor: osActor(), verb: 'switch', onStep: note }),
    );
    printOutcome(cmd, outcome);
  });
  withSettings(
    command.command('rollback').description('switch back to the colour that was live before the last switch'),
  ).action(async (options: Record<DeploySettingName, string | undefined>, cmd: Command) => {
    const settings = resolveDeploySettings(commandConfig(cmd), options);
    const outcome = await withStore(cmd, (store) =>
      rollbackColour(store, settings, { actor: osActor(), onStep: note }),
    );
    printOutcome(cmd, outcome);
  });
  command
    .command('log')
    .description('switches and rollbacks, newest first: who, from, to, versions, outcome')
    .option('--limit <n>', 'at most this many', integerOption('--limit'), 50)
    .action(async (options: { limit: number }, cmd: Command) => {
      if (options.limit < 1) throw new AthanorError('invalid_argument', '--limit must be at least 1');
      const rows = await withStore(cmd, (store) => deployLog(store, options.limit));
      const entries = rows.map((r) => ({
        at: r.at,
        actor: r.actor,
        action: r.action,
        target: r.target,
        outcome: r.outcome,
        details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : {},
      }));
      if (wantsJson(cmd)) {
        printJson(entries);
        return;
      }
      printTable(
        entries,
        [
          { header: 'AT', value: (e) => e.at },
          { header: 'WHO', value: (e) => e.actor },
          { header: 'ACTION', value: (e) => e.action.replace(/^deploy\./, '') },
          {
            header: 'FROM',
            value: (e) =>
              `${(e.details.from as string | undefined) ?? '-'} ${(e.details.fromVersion as string | undefined) ?? ''}`.trim(),
          },
          {
            header: 'TO',
            value: (e) => `${e.target ?? '-'} ${(e.details.toVersion as string | undefined) ?? ''}`.trim(),
          },
          {
            header: 'OUTCOME',
            value: (e) =>
              e.outcome === 'ok'
                ? e.details.switched === false
                  ? 'unchanged'
                  : 'ok'
                : `error: ${e.details.message as string}`,
          },
        ],
        'no deploys recorded',
      );
    });
  return command;
}
