import { Command } from 'commander';
import { AthanorError, ExitCode } from '../../domain/errors.js';
import { backupEnv } from '../../ops/backup/backup-env.js';
import { pauseForMigration, preMigrationBackup } from '../../ops/migrate-backup.js';
import { osActor, recordAudit, recordFailure } from '../../service/audit.js';
import type { MigrationStatus } from '../../store/migrator.js';
import {
  checkSchema,
  getMigrationStatus,
  migrate,
  migrationStatements,
  resetDatabase,
} from '../../store/migrator.js';
import type { Store } from '../../store/open-store.js';
import { appVersion } from '../../version.js';
import { confirm, integerOption, wantsJson, withStore } from '../context.js';
import { bold, note, printJson, printLine, printTable } from '../output.js';

const statusExitCodes: Readonly<Record<MigrationStatus['state'], ExitCode>> = {
  up_to_date: ExitCode.ok,
  pending: ExitCode.error,
  drift: ExitCode.checkFailed,
  newer: ExitCode.incompatibleSchema,
  newer_breaking: ExitCode.incompatibleSchema,
};

function statusJson(store: Store, status: MigrationStatus) {
  return {
    state: status.state,
    backend: store.backend.name,
    database: store.displayUrl,
    databaseVersion: status.databaseVersion,
    releaseVersion: status.releaseVersion,
    appVersion,
    applied: status.applied.map((a) => ({
      id: a.id,
      name: a.name,
      breaking: a.breaking === 1,
      appliedAt: a.applied_at,
      appVersion: a.app_version,
      durationMs: a.duration_ms,
      backupId: a.backup_id,
    })),
    pending: status.pending.map((m) => ({ id: m.id, name: m.name, breaking: m.breaking })),
    newer: status.newer.map((a) => ({
      id: a.id,
      name: a.name,
      breaking: a.breaking === 1,
      appVersion: a.app_version,
    })),
    drift: status.drift,
  };
}

const stateText: Readonly<Record<MigrationStatus['state'], string>> = {
  up_to_date: 'up to date',
  pending: "migrations pending: run 'athanor database migrate'",
  drift: 'DRIFT: applied migrations differ from this release',
  newer: 'the database is newer than this release (non-breaking: this release can still run)',
  newer_breaking: 'the database is newer than this release and incompatible with it',
};

async function runMigrate(
  store: Store,
  config: { lockTimeoutMs: number },
  action: string,
  options: { to?: number; json: boolean; backupId?: string },
) {
  const actor = osActor();
  const before = await getMigrationStatus(store).catch(() => undefined);
  try {
    const applied = await migrate(store, {
      to: options.to,
      lockTimeoutMs: config.lockTimeoutMs,
      backupId: options.backupId,
      onProgress: options.json
        ? undefined
        : (event) => {
            if (event.phase === 'start')
              note(`applying migration ${event.migration.id} (${event.migration.name})…`);
            else
              note(
                `applied migration ${event.migration.id} (${event.migration.name}) in ${event.durationMs} ms`,
              );
          },
    });
    const after = await getMigrationStatus(store);
    if (applied.length > 0) {
      await recordAudit(store, {
        actor,
        action,
        target: store.displayUrl,
        outcome: 'ok',
        details: {
          from: before?.databaseVersion ?? 0,
          to: after.databaseVersion,
          applied: applied.map((a) => a.id),
          ...(options.backupId ? { backupId: options.backupId } : {}),
        },
      });
    }
    return { applied, after };
  } catch (error) {
    await recordFailure(store, { actor, action, target: store.displayUrl }, error);
    throw error;
  }
}

/** Pauses servers for a migration with pending steps, telling the operator (unless --json). */
async function pauseIfPending(
  store: Store,
  json: boolean,
  pending: boolean,
): Promise<{ resume(): Promise<void> } | undefined> {
  if (!pending) return undefined;
  const pause = await pauseForMigration(store, osActor());
  if (!pause) return undefined;
  if (!json) note('maintenance mode on: servers refuse writes and claims until the migration ends');
  return {
    async resume() {
      await pause.resume();
      if (!json) note('maintenance mode off');
    },
  };
}

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
          const { applied, after } = await runMigrate(store, config, 'database.init', { json });
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
            const status = await getMigrationStatus(store);
            const steps = status.pending.filter((m) => options.to === undefined || m.id <= options.to);
            const plan = [];
            for (const m of steps) {
              plan.push({
                id: m.id,
                name: m.name,
                breaking: m.breaking,
                sql: await migrationStatements(m, store.backend),
              });
            }
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
          const before = await getMigrationStatus(store);
          const steps = before.pending.filter((m) => options.to === undefined || m.id <= options.to);
          let backupId: string | undefined;
          let undo: string | undefined;
          let result: Awaited<ReturnType<typeof runMigrate>>;
          // Servers on this database stop writes and claims while the migrations run (after the
          // backup, so a restored backup is not in maintenance); it ends even when migrating fails.
          let pause: { resume(): Promise<void> } | undefined;
          try {
            // An empty database has nothing to lose; drift and the like fail in migrate() before any change.
            if (
              options.backup &&
              steps.length > 0 &&
              before.databaseVersion > 0 &&
              before.state === 'pending'
            ) {
              if (!json) note('taking a backup before migrating (skip with --no-backup)…');
              backupId = await preMigrationBackup(store, config, options, () => {
                if (!json) note('the backup target is busy (another backup or migration); waiting…');
              });
              if (!json && backupId) note(`backup ${backupId} taken`);
            }
            const targetFlag = options.backupTarget ? ` --target ${options.backupTarget}` : '';
            undo = backupId
              ? `athanor backup restore ${backupId} --force --no-migrate${targetFlag}`
              : undefined;
            pause = await pauseIfPending(
              store,
              json,
              steps.length > 0 && before.databaseVersion > 0 && before.state === 'pending',
            );
            try {
              result = await runMigrate(store, config, 'database.migrate', {
                to: options.to,
                json,
                ...(backupId ? { backupId } : {}),
              });
            } catch (error) {
              // Migrations applied before the failing one stay applied: the backup is the way back.
              if (undo) note(`the backup taken before migrating is ${backupId}; to undo: ${undo}`);
              throw error;
            }
          } finally {
            await pause?.resume();
          }
          const { applied, after } = result;
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
                `  (it restores the database at migration ${before.databaseVersion}; then run the release you migrated from)`,
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
