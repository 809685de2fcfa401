import { ExitCode } from '../domain/errors.js';
import type { MigrateEvent } from '../ops/migrate.js';
import type { MigrationStatus } from '../store/migrator.js';
import type { Store } from '../store/open-store.js';
import { appVersion } from '../version.js';
import { note } from './output.js';

// What the database commands print: migration status as JSON and text, exit codes, migrate notes.

export const statusExitCodes: Readonly<Record<MigrationStatus['state'], ExitCode>> = {
  up_to_date: ExitCode.ok,
  pending: ExitCode.error,
  drift: ExitCode.checkFailed,
  newer: ExitCode.incompatibleSchema,
  newer_breaking: ExitCode.incompatibleSchema,
};

export function statusJson(store: Store, status: MigrationStatus) {
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

export const stateText: Readonly<Record<MigrationStatus['state'], string>> = {
  up_to_date: 'up to date',
  pending: "migrations pending: run 'athanor database migrate'",
  drift: 'DRIFT: applied migrations differ from this release',
  newer: 'the database is newer than this release (non-breaking: this release can still run)',
  newer_breaking: 'the database is newer than this release and incompatible with it',
};

/** Prints what a migration does on stderr (nothing with --json). */
export function migrateNotes(json: boolean): ((event: MigrateEvent) => void) | undefined {
  if (json) return undefined;
  return (event) => {
    switch (event.kind) {
      case 'backup_start':
        return note('taking a backup before migrating (skip with --no-backup)…');
      case 'backup_wait':
        return note('the backup target is busy (another backup or migration); waiting…');
      case 'backup_done':
        return note(`backup ${event.backupId} taken`);
      case 'maintenance_on':
        return note('maintenance mode on: servers refuse writes and claims until the migration ends');
      case 'maintenance_off':
        return note('maintenance mode off');
      case 'migration_start':
        return note(`applying migration ${event.id} (${event.name})…`);
      case 'migration_done':
        return note(`applied migration ${event.id} (${event.name}) in ${event.durationMs} ms`);
      case 'failed_after_backup':
        return note(`the backup taken before migrating is ${event.backupId}; to undo: ${event.undo}`);
    }
  };
}
