import type { Config } from '../config/resolve-config.js';
import { recordAudit, recordFailure } from '../service/audit.js';
import type { AppliedResult, MigrationStatus } from '../store/migrator.js';
import { getMigrationStatus, migrate, migrationStatements } from '../store/migrator.js';
import type { Store } from '../store/open-store.js';
import { pauseForMigration, preMigrationBackup } from './migrate-backup.js';

/** What `migrateDatabase` is doing, for a command to print; nothing here is a secret. */
export type MigrateEvent =
  | { readonly kind: 'backup_start' }
  | { readonly kind: 'backup_wait' }
  | { readonly kind: 'backup_done'; readonly backupId: string }
  | { readonly kind: 'maintenance_on' }
  | { readonly kind: 'maintenance_off' }
  | { readonly kind: 'migration_start'; readonly id: number; readonly name: string }
  | {
      readonly kind: 'migration_done';
      readonly id: number;
      readonly name: string;
      readonly durationMs: number | undefined;
    }
  /** Migrating failed after the backup was taken: `undo` puts the database back. */
  | { readonly kind: 'failed_after_backup'; readonly backupId: string; readonly undo: string };

export interface MigrateDatabaseOptions {
  /** Who migrates, for the audit log. */
  readonly actor: string;
  /** The audit action; default `database.migrate`. */
  readonly action?: 'database.migrate' | 'database.init';
  /** What started it, recorded in the audit details (e.g. `serve --migrate`); default none. */
  readonly by?: string;
  /** Stop after this migration; default the newest. */
  readonly to?: number | undefined;
  /** Take a backup first when migrations are pending on a database that holds a schema; default false. */
  readonly backup?: boolean;
  /** Hold servers on this database in maintenance while those migrations run; default false. */
  readonly pauseServers?: boolean;
  /** Where that backup goes; default the configured backup target. */
  readonly backupTarget?: string | undefined;
  readonly onEvent?: (event: MigrateEvent) => void;
}

export interface MigrateDatabaseResult {
  readonly applied: readonly AppliedResult[];
  readonly before: MigrationStatus | undefined;
  readonly after: MigrationStatus;
  /** The backup taken first, if one was. */
  readonly backupId: string | undefined;
  /** The command that undoes the migration (restores that backup), if a backup was taken. */
  readonly undo: string | undefined;
}

/**
 * Migrates the database the one way every command does: the optional backup first, servers held
 * in maintenance meanwhile, each migration under the lock, and the outcome (success or failure)
 * in the audit log. Used by `database init|migrate`, `serve --migrate` and `up`.
 */
export async function migrateDatabase(
  store: Store,
  config: Config,
  options: MigrateDatabaseOptions,
): Promise<MigrateDatabaseResult> {
  const emit = options.onEvent ?? (() => {});
  const action = options.action ?? 'database.migrate';
  const before = await getMigrationStatus(store).catch(() => undefined);
  const steps = before?.pending.filter((m) => options.to === undefined || m.id <= options.to) ?? [];
  // An empty database has nothing to lose; drift and the like fail in migrate() before any change.
  const guarded =
    steps.length > 0 && before !== undefined && before.databaseVersion > 0 && before.state === 'pending';
  let backupId: string | undefined;
  let undo: string | undefined;
  // Servers on this database stop writes and claims while the migrations run (after the backup,
  // so a restored backup is not in maintenance); it ends even when migrating fails.
  let pause: { resume(): Promise<void> } | undefined;
  try {
    if (guarded && options.backup === true) {
      emit({ kind: 'backup_start' });
      backupId = await preMigrationBackup(store, config, options, () => emit({ kind: 'backup_wait' }));
      if (backupId) emit({ kind: 'backup_done', backupId });
    }
    const targetFlag = options.backupTarget ? ` --target ${options.backupTarget}` : '';
    undo = backupId ? `athanor backup restore ${backupId} --force --no-migrate${targetFlag}` : undefined;
    if (guarded && options.pauseServers === true) {
      pause = await pauseForMigration(store, options.actor);
      if (pause) emit({ kind: 'maintenance_on' });
    }
    let applied: readonly AppliedResult[];
    try {
      applied = await migrate(store, {
        to: options.to,
        lockTimeoutMs: config.lockTimeoutMs,
        backupId,
        onProgress: (event) =>
          emit(
            event.phase === 'start'
              ? { kind: 'migration_start', id: event.migration.id, name: event.migration.name }
              : {
                  kind: 'migration_done',
                  id: event.migration.id,
                  name: event.migration.name,
                  durationMs: event.durationMs,
                },
          ),
      });
    } catch (error) {
      // Migrations applied before the failing one stay applied: the backup is the way back.
      if (backupId && undo) emit({ kind: 'failed_after_backup', backupId, undo });
      throw error;
    }
    const after = await getMigrationStatus(store);
    if (applied.length > 0) {
      await recordAudit(store, {
        actor: options.actor,
        action,
        target: store.displayUrl,
        outcome: 'ok',
        details: {
          from: before?.databaseVersion ?? 0,
          to: after.databaseVersion,
          applied: applied.map((a) => a.id),
          ...(backupId ? { backupId } : {}),
          ...(options.by ? { by: options.by } : {}),
        },
      });
    }
    return { applied, before, after, backupId, undo };
  } catch (error) {
    await recordFailure(store, { actor: options.actor, action, target: store.displayUrl }, error);
    throw error;
  } finally {
    if (pause) {
      await pause.resume();
      emit({ kind: 'maintenance_off' });
    }
  }
}

export interface PlannedMigration {
  readonly id: number;
  readonly name: string;
  readonly breaking: boolean;
  /** The statements it would run on this database's backend. */
  readonly sql: readonly string[];
}

/** What `migrateDatabase` would apply, with its SQL, changing nothing. */
export async function migrationPlan(
  store: Store,
  options: { readonly to?: number | undefined } = {},
): Promise<{ readonly status: MigrationStatus; readonly plan: readonly PlannedMigration[] }> {
  const status = await getMigrationStatus(store);
  const plan: PlannedMigration[] = [];
  for (const m of status.pending.filter((p) => options.to === undefined || p.id <= options.to)) {
    plan.push({
      id: m.id,
      name: m.name,
      breaking: m.breaking,
      sql: await migrationStatements(m, store.backend),
    });
  }
  return { status, plan };
}
