import { Command } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import { backupEnv } from '../../ops/backup/backup-env.js';
import { migrateDatabase, migrationPlan } from '../../ops/migrate.js';
import { osActor, recordAudit } from '../../service/audit.js';
import { checkSchema, getMigrationStatus, resetDatabase } from '../../store/migrator.js';
import { appVersion } from '../../version.js';
import { confirm, integerOption, wantsJson, withStore } from '../context.js';
import { bold, printJson, printLine, printTable } from '../output.js';
import { migrateNotes, stateText, statusExitCodes, statusJson } from '../database-output.js';

interface MigrateFlags {
  readonly to?: number;
  readonly plan?: boolean;
  /** False with `--no-backup`. */
  readonly backup: boolean;
  readonly backupTarget?: string;
}

export function databaseCommand(): Command {
  const command = new Command('database').description('create, inspect and migrate the state store');

  command
    .command('init')
    .description('create the database and apply every migration; running it again changes nothing')
    .action(async (_options: unknown, cmd: Command) => {
      const json = wantsJson(cmd);
      await withStore(
        cmd,
        async (store, config) => {
          const { applied, after } = await migrateDatabase(store, config, {
            actor: osActor(),
            action: 'database.init',
            onEvent: migrateNotes(json),
          });
          if (json) printJson({ ...statusJson(store, after), appliedNow: applied });
          else if (applied.length === 0) {
            printLine(
              `database ${store.displayUrl} is already at migration ${after.databaseVersion}; nothing to do`,
            );
          } else printLine(`database ${store.displayUrl} initialized at migration ${after.databaseVersion}`);
        },
        { create: true },
      );
    });

  command
    .command('status')
    .description(
      'where the database stands: exit 0 up to date, 1 pending, 3 drift, 6 newer than this release',
    )
    .action(async (_options: unknown, cmd: Command) => {
      const status = await withStore(cmd, async (store) => {
        const s = await getMigrationStatus(store);
        if (wantsJson(cmd)) {
          printJson(statusJson(store, s));
          return s;
        }
        printLine(`${bold('database')}  ${store.displayUrl} (${store.backend.name})`);
        printLine(
          `${bold('schema')}    migration ${s.databaseVersion}; this release (${appVersion}) has ${s.releaseVersion}`,
        );
        printLine(`${bold('state')}     ${stateText[s.state]}`);
        for (const d of s.drift) printLine(`  ${d.message}`);
        for (const m of s.pending)
          printLine(`  pending: ${m.id} ${m.name}${m.breaking ? ' (breaking)' : ''}`);
        for (const n of s.newer)
          printLine(`  newer: ${n.id} ${n.name}${n.breaking ? ' (breaking)' : ''} from ${n.app_version}`);
        return s;
      });
      process.exitCode = statusExitCodes[status.state];
    });

  command
    .command('migrate')
    .description('apply pending migrations, each in its own transaction, under a lock; takes a backup first')
    .option('--to <id>', 'stop after this migration', integerOption('--to'))
    .option('--plan', 'print what would run (with its SQL) and change nothing')
    .option(
      '--no-backup',
      'skip the backup taken first (by default, when migrations are pending on a database with data)',
    )
    .option(
      '--backup-target <url>',
      `where that backup goes: file:<dir> or s3://bucket/prefix (${backupEnv.target}; default file:<data dir>/backups)`,
    )
    .action(async (options: MigrateFlags, cmd: Command) => {
      const json = wantsJson(cmd);
      await withStore(
        cmd,
        async (store, config) => {
          if (options.plan) {
            const { status, plan } = await migrationPlan(store, options);
            if (json) printJson({ state: status.state, databaseVersion: status.databaseVersion, plan });
            else if (plan.length === 0)
              printLine(`nothing to apply: the database is at migration ${status.databaseVersion}`);
            else {
              for (const step of plan) {
                printLine(bold(`-- migration ${step.id} (${step.name})${step.breaking ? ' BREAKING' : ''}`));
                for (const statement of step.sql) printLine(`${statement};`);
              }
            }
            return;
          }
          const result = await migrateDatabase(store, config, {
            actor: osActor(),
            to: options.to,
            backup: options.backup,
            pauseServers: true,
            backupTarget: options.backupTarget,
            onEvent: migrateNotes(json),
          });
          const { applied, before, after, backupId, undo } = result;
          if (json) {
            printJson({
              applied,
              databaseVersion: after.databaseVersion,
              state: after.state,
              backupId: backupId ?? null,
              undo: undo ?? null,
            });
          } else if (applied.length === 0)
            printLine(`nothing to apply: the database is at migration ${after.databaseVersion}`);
          else {
            printLine(`the database is now at migration ${after.databaseVersion}`);
            if (undo) {
              printLine(`to undo: ${undo}`);
              printLine(
                `  (it restores the database at migration ${before?.databaseVersion ?? 0}; then run the release you migrated from)`,
              );
            }
          }
        },
        { create: true },
      );
    });

  command
    .command('check')
    .description('compare the live schema with the one this release expects (exit 3 on a difference)')
    .action(async (_options: unknown, cmd: Command) => {
      const differences = await withStore(cmd, (store) => checkSchema(store));
      if (wantsJson(cmd)) printJson({ ok: differences.length === 0, differences });
      else if (differences.length === 0) printLine('the schema is exactly what this release expects');
      else {
        printTable(differences, [
          { header: 'OBJECT', value: (d) => d.object },
          { header: 'EXPECTED', value: (d) => d.expected ?? '(absent)' },
          { header: 'ACTUAL', value: (d) => d.actual ?? '(absent)' },
        ]);
      }
      if (differences.length > 0) {
        throw new AthanorError(
          'schema_check_failed',
          `the live schema differs from the expected one in ${differences.length} place(s); ` +
            `restore from a backup or undo the manual change`,
        );
      }
    });

  command
    .command('reset')
    .description('DROP every table and recreate an empty database at this release (destroys all data)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (options: { yes?: boolean }, cmd: Command) => {
      const json = wantsJson(cmd);
      await withStore(cmd, async (store, config) => {
        await confirm(`reset ${store.displayUrl}: every table and all data will be dropped`, options.yes);
        const applied = await resetDatabase(store, { lockTimeoutMs: config.lockTimeoutMs });
        await recordAudit(store, {
          actor: osActor(),
          action: 'database.reset',
          target: store.displayUrl,
          outcome: 'ok',
          details: { applied: applied.map((a) => a.id) },
        });
        if (json) printJson({ reset: true, applied });
        else printLine(`reset ${store.displayUrl}; now empty at migration ${applied.at(-1)?.id ?? 0}`);
      });
    });

  return command;
}
