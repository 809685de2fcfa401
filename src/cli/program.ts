import { Command, CommanderError, Option } from 'commander';
import type { SettingName } from '../config/resolve-config.js';
import { defaultText, settingSpecs } from '../config/resolve-config.js';
import { processVariables } from '../config/settings.js';
import { ExitCode, exitCodeMeanings } from '../domain/errors.js';
import { appVersion } from '../version.js';
import { printJson, printLine, printTable, reportError } from './output.js';

/**
 * Every top-level command and the module that builds it. A run loads only the module of the
 * command it names (a bare `--version` loads none): the modules pull in the database drivers,
 * argon2, the S3 SDK, and loading them all made every call pay for all of them.
 */
const commandModules: Readonly<Record<string, () => Promise<Command[]>>> = {
  identity: async () => [(await import('./commands/identity.js')).identityCommand()],
  database: async () => [(await import('./commands/database.js')).databaseCommand()],
  audit: async () => [(await import('./commands/audit.js')).auditCommand()],
  backup: async () => [(await import('./commands/backup.js')).backupCommand()],
  serve: async () => [(await import('./commands/serve.js')).serveCommand()],
  up: async () => [(await import('./commands/up.js')).upCommand()],
  compute: async () => [(await import('./commands/compute.js')).computeCommand()],
  maintenance: async () => [(await import('./commands/maintenance.js')).maintenanceCommand()],
  objects: async () => [(await import('./commands/objects.js')).objectsCommand()],
  token: async () => [(await import('./commands/token.js')).tokenCommand()],
  deploy: async () => [(await import('./commands/deploy.js')).deployCommand()],
  network: async () => [(await import('./commands/network.js')).networkCommand()],
  task: async () => [(await import('./commands/task.js')).taskCommand()],
  result: async () => [(await import('./commands/result.js')).resultCommand()],
  events: async () => [(await import('./commands/events.js')).eventsCommand()],
  webhook: async () => [(await import('./commands/webhook.js')).webhookCommand()],
  strategy: async () => [(await import('./commands/strategy.js')).strategyCommand()],
};

/** User-API commands: they take the server URL and the user identity. */
const userApiCommands: ReadonlySet<string> = new Set([
  'network',
  'task',
  'result',
  'events',
  'webhook',
  'strategy',
]);

/** Global options that take a value, so the word after them is not a command name. */
const globalValueOptions: ReadonlySet<string> = new Set(['--database-url', '--data-dir', '--config']);

/**
 * The top-level commands a run needs: the one it names (and, for `help <command>`, that one),
 * none for a bare `--version`, all of them for `--help` or a name that is no command (so the
 * usage error can suggest the closest).
 */
export function commandsNeeded(argv: readonly string[]): readonly string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (globalValueOptions.has(arg)) i++;
    else if (!arg.startsWith('-')) words.push(arg);
    if (words.length === 2) break;
  }
  const [first, second] = words;
  if (first === undefined) {
    const versionOnly = argv.some((a) => a === '-V' || a === '--version') && !argv.some(isHelpFlag);
    return versionOnly ? [] : Object.keys(commandModules);
  }
  if (first === 'help') {
    if (second === undefined || second === 'exit-codes') return second ? [] : Object.keys(commandModules);
    return second in commandModules ? [second] : Object.keys(commandModules);
  }
  return first in commandModules ? [first] : Object.keys(commandModules);
}

const isHelpFlag = (arg: string) => arg === '-h' || arg === '--help';

function environmentHelp(): string {
  const rows: [string, string][] = [
    ...Object.entries(settingSpecs).map(([name, s]): [string, string] => [
      s.env,
      `${s.description} (default ${defaultText(name as SettingName)})`,
    ]),
    ...Object.values(processVariables).map((v): [string, string] => [v.env, v.description]),
  ];
  // One column for every name, the longest included, so no description starts out of line.
  const width = Math.max(...rows.map(([env]) => env.length)) + 2;
  return [
    '',
    'Environment (flags win over these, these over the config file):',
    ...rows.map(([env, text]) => `  ${env.padEnd(width)}${text}`),
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
  const path: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) path.unshift(c.name());
  command.showHelpAfterError(`(run '${path.join(' ')} --help' for usage)`);
  for (const sub of command.commands) configureTree(sub);
}

/** The command tree with the named top-level commands (default: all of them). */
export async function buildProgram(names: readonly string[] = Object.keys(commandModules)): Promise<Command> {
  const program = new Command('athanor')
    .description('Athanor: a self-hosted compute platform with first-class operations')
    .version(appVersion, '-V, --version')
    .addOption(new Option('--database-url <url>', 'state store URL (ATHANOR_DATABASE_URL)'))
    .addOption(new Option('--data-dir <dir>', 'data directory (ATHANOR_DATA_DIR)'))
    .addOption(new Option('--config <file>', 'config file (ATHANOR_CONFIG)'))
    .option('--json', 'machine-readable output on stdout')
    .helpCommand(false)
    .addHelpText('after', environmentHelp());

  const loaded = await Promise.all(
    Object.entries(commandModules)
      .filter(([name]) => names.includes(name))
      .map(([, load]) => load()),
  );
  for (const command of loaded.flat()) {
    if (userApiCommands.has(command.name())) {
      // `webhook add --url` names the endpoint, so there the server's URL is `--server`.
      const urlFlag = command.name() === 'webhook' ? '--server <url>' : '--url <url>';
      command
        .option(urlFlag, 'server URL (ATHANOR_URL, default http://127.0.0.1:8080)')
        .option('--id <identity>', 'user identity (ATHANOR_ID)')
        .option('--key <key>', 'its key (ATHANOR_KEY or ATHANOR_KEY_FILE; prefer those to this flag)');
    }
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
  try {
    const program = await buildProgram(commandsNeeded(argv));
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
