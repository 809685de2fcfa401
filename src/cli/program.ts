import { Command, CommanderError, Option } from 'commander';
import { settingSpecs } from '../config/resolve-config.js';
import { ExitCode, exitCodeMeanings } from '../domain/errors.js';
import { appVersion } from '../version.js';
import { auditCommand } from './commands/audit.js';
import { backupCommand } from './commands/backup.js';
import { computeCommand } from './commands/compute.js';
import { databaseCommand } from './commands/database.js';
import { identityCommand } from './commands/identity.js';
import { maintenanceCommand } from './commands/maintenance.js';
import { objectsCommand } from './commands/objects.js';
import { networkCommand, resultCommand, taskCommand } from './commands/queue.js';
import { serveCommand } from './commands/serve.js';
import { tokenCommand } from './commands/token.js';
import { upCommand } from './commands/up.js';
import { printJson, printLine, printTable, reportError } from './output.js';

function environmentHelp(): string {
  const rows = Object.values(settingSpecs).map((s) => `  ${s.env.padEnd(26)} ${s.description}`);
  return [
    '',
    'Environment (flags win over these, these over the config file):',
    ...rows,
    `  ${'ATHANOR_CONFIG'.padEnd(26)} config file (default ./athanor.config.json when present)`,
    `  ${'ATHANOR_JWT_SECRET[_FILE]'.padEnd(26)} token signing secret (default: generated, kept in the database)`,
    `  ${'ATHANOR_JWT_PREVIOUS_SECRET'.padEnd(26)} the secret being rotated out (_FILE too): still accepted`,
    `  ${'ATHANOR_METRICS_TOKEN[_FILE]'.padEnd(26)} bearer token that unlocks per-scope /metrics series`,
    `  ${'ATHANOR_DEBUG=1'.padEnd(26)} print stack traces`,
    `  ${'NO_COLOR'.padEnd(26)} plain output`,
    '',
    "Exit codes: 'athanor help exit-codes'.",
  ].join('\n');
}

function exitCodesTopic(json: boolean): void {
  const rows = Object.entries(exitCodeMeanings).map(([code, meaning]) => ({ code: Number(code), meaning }));
  if (json) printJson(rows);
  else
    printTable(rows, [
      { header: 'CODE', value: (r) => String(r.code) },
      { header: 'MEANING', value: (r) => r.meaning },
    ]);
}

/** Applies usage-error handling and global help text to a command and all its subcommands. */
function configureTree(command: Command): void {
  command.exitOverride();
  command.showHelpAfterError('(add --help for usage)');
  for (const sub of command.commands) configureTree(sub);
}

export function buildProgram(): Command {
  const program = new Command('athanor')
    .description('Athanor: a self-hosted compute platform with first-class operations')
    .version(appVersion, '-V, --version')
    .addOption(new Option('--database-url <url>', 'state store URL (ATHANOR_DATABASE_URL)'))
    .addOption(new Option('--data-dir <dir>', 'data directory (ATHANOR_DATA_DIR)'))
    .addOption(new Option('--config <file>', 'config file (ATHANOR_CONFIG)'))
    .option('--json', 'machine-readable output on stdout')
    .helpCommand(false)
    .addHelpText('after', environmentHelp());

  program.addCommand(identityCommand());
  program.addCommand(databaseCommand());
  program.addCommand(auditCommand());
  program.addCommand(backupCommand());
  program.addCommand(serveCommand());
  program.addCommand(upCommand());
  program.addCommand(computeCommand());
  program.addCommand(maintenanceCommand());
  program.addCommand(objectsCommand());
  program.addCommand(tokenCommand());
  for (const command of [networkCommand(), taskCommand(), resultCommand()]) {
    command
      .option('--url <url>', 'server URL (ATHANOR_URL, default http://127.0.0.1:8080)')
      .option('--id <identity>', 'user identity (ATHANOR_ID)')
      .option('--key <key>', 'its key (ATHANOR_KEY or ATHANOR_KEY_FILE; prefer those to this flag)');
    program.addCommand(command);
  }

  program
    .command('help')
    .description("show help for a command, or a topic: 'athanor help exit-codes'")
    .argument('[topic...]', 'a command path or exit-codes')
    .action((topic: string[], _options: unknown, cmd: Command) => {
      if (topic.join(' ') === 'exit-codes') {
        exitCodesTopic(cmd.optsWithGlobals<{ json?: boolean }>().json === true);
        return;
      }
      let target: Command = program;
      for (const name of topic) {
        const next = target.commands.find((c) => c.name() === name);
        if (!next) {
          printLine(`no command or topic '${topic.join(' ')}'`);
          process.exitCode = ExitCode.usage;
          return;
        }
        target = next;
      }
      target.outputHelp();
    });

  configureTree(program);
  return program;
}

/** Runs the CLI and returns the exit code; usage errors are 2, others from the error registry. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    return reportError(error, argv.includes('--json'));
  }
}
