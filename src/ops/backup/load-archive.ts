import type { Kysely } from 'kysely';
import { AthanorError } from '../../domain/errors.js';
import {
  compareMigrations,
  ensureMigrationsTable,
  recordMigration,
  runMigration,
} from '../../store/migrator.js';
import type { Migration } from '../../store/migrations/migration.js';
import type { Database } from '../../store/schema.js';
import { appVersion } from '../../version.js';
import type { BackupManifest } from './manifest.js';
import type { ArchiveReader } from './read-archive.js';
import type { ReplaceTarget } from './replace-database.js';
import type { LoadRow } from './snapshot.js';
import { isBytesType } from './snapshot.js';

/**
 * Checks that this release can recreate the backup's schema: every migration the backup carries
 * must be one this release has, unchanged. Runs before anything is written.
 */
export async function checkRestorable(manifest: BackupManifest, known: readonly Migration[]): Promise<void> {
  const status = await compareMigrations(manifest.schema.migrations, known);
  const newer = status.newer[0];
  if (newer) {
    throw new AthanorError(
      'backup_incompatible',
      `backup ${manifest.id} is at migration ${manifest.schema.version}, newer than this release ` +
        `(${appVersion}, migration ${status.releaseVersion}): restore it with Athanor ${manifest.appVersion} or newer`,
    );
  }
  const drift = status.drift[0];
  if (drift) {
    throw new AthanorError(
      'backup_incompatible',
      drift.problem === 'missing_from_code'
        ? `backup ${manifest.id} carries migration ${drift.id} (${drift.name}), which this release ` +
            `does not have: restore it with Athanor ${manifest.appVersion}`
        : `backup ${manifest.id} was taken with a different migration ${drift.id} (${drift.name}) than ` +
            `this release's (${known.find((m) => m.id === drift.id)?.name ?? drift.name}): restore it with ` +
            `Athanor ${manifest.appVersion}`,
    );
  }
  const skipped = status.pending.filter((m) => m.id <= manifest.schema.version);
  if (skipped.length > 0) {
    throw new AthanorError(
      'backup_incompatible',
      `backup ${manifest.id} lacks migration ${skipped.map((m) => m.id).join(', ')} below its version ` +
        `${manifest.schema.version}: restore it with Athanor ${manifest.appVersion}`,
    );
  }
}

export interface LoadOptions {
  /** This release's migrations (tests pass their own). */
  readonly migrations: readonly Migration[];
  /** Apply the release's newer migrations after loading; verify leaves the backup's version. */
  readonly migrateForward: boolean;
  readonly onProgress?: (progress: { table: string; rowsDone: number; rowsTotal: number }) => void;
}

export interface LoadResult {
  readonly rows: number;
  readonly tables: number;
  /** Migrations applied after loading, to bring the backup to this release. */
  readonly applied: readonly number[];
  readonly schemaVersion: number;
}

/** Rows handed to the backend's inserter at a time. */
const rowsPerInsert = 5000;

/**
 * Recreates the backup's schema in an empty database by running this release's migrations up to the
 * backup's version, loads every table in the manifest's order, then (optionally) migrates forward.
 * Runs inside the caller's transaction.
 */
export async function loadArchive(
  trx: Kysely<Database>,
  target: ReplaceTarget,
  archive: ArchiveReader,
  options: LoadOptions,
): Promise<LoadResult> {
  const backend = target.backend;
  const manifest = archive.manifest;
  const version = manifest.schema.version;
  await ensureMigrationsTable(trx as unknown as Kysely<unknown>);
  // The backup's own athanor_migrations rows are loaded below: these runs are not recorded.
  for (const migration of options.migrations.filter((m) => m.id <= version)) {
    await runMigration(trx, backend, migration);
  }
  const finishLoad = await target.prepareLoad(trx);
  const rowsTotal = manifest.totals.rows;
  let rowsDone = 0;
  for (const table of manifest.tables) {
    if (!(await backend.tableExists(trx, table.name))) {
      throw new AthanorError(
        'backup_incompatible',
        `backup ${manifest.id} holds table ${table.name}, which migration ${version} of this release does not ` +
          `create; restore it with Athanor ${manifest.appVersion}`,
      );
    }
    const loader = target.tableLoader(
      trx,
      table.name,
      table.columns.map((c) => c.name),
    );
    const unloadable = (cause: unknown) =>
      new AthanorError(
        'backup_incompatible',
        `cannot load table ${table.name} of backup ${manifest.id}: ${(cause as Error).message}`,
        { cause },
      );
    // Bytes travel as base64 text (a backup from before the column holds none of them).
    const bytesColumns = table.columns.filter((c) => isBytesType(c.type)).map((c) => c.name);
    const decode = (row: LoadRow): LoadRow => {
      if (bytesColumns.length === 0) return row;
      const decoded: Record<string, LoadRow[string]> = { ...row };
      for (const column of bytesColumns) {
        const value = row[column];
        if (typeof value === 'string') decoded[column] = Buffer.from(value, 'base64');
      }
      return decoded;
    };
    let batch: LoadRow[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      try {
        await loader.write(batch);
      } catch (cause) {
        throw unloadable(cause);
      }
      rowsDone += batch.length;
      options.onProgress?.({ table: table.name, rowsDone, rowsTotal });
      batch = [];
    };
    try {
      for await (const row of archive.rows(table)) {
        batch.push(decode(row));
        if (batch.length >= rowsPerInsert) await flush();
      }
      await flush();
    } catch (error) {
      // The COPY in flight must end before the transaction can roll back on its connection.
      await loader.end().catch(() => {});
      throw error;
    }
    try {
      await loader.end();
    } catch (cause) {
      throw unloadable(cause);
    }
  }
  try {
    await finishLoad();
  } catch (cause) {
    throw new AthanorError(
      'backup_incompatible',
      `backup ${manifest.id} loaded, but its rows break a key or a foreign key: ${(cause as Error).message}`,
      { cause },
    );
  }
  const applied: number[] = [];
  if (options.migrateForward) {
    for (const migration of options.migrations.filter((m) => m.id > version)) {
      let durationMs: number;
      try {
        durationMs = await runMigration(trx, backend, migration);
      } catch (cause) {
        throw new AthanorError(
          'migration_failed',
          `backup ${manifest.id} loaded, but migration ${migration.id} (${migration.name}) failed on it; the ` +
            `restore was rolled back and the database is unchanged: ${(cause as Error).message}`,
          { cause },
        );
      }
      await recordMigration(trx, migration, { durationMs, backupId: manifest.id });
      applied.push(migration.id);
    }
  }
  return {
    rows: rowsDone,
    tables: manifest.tables.length,
    applied,
    schemaVersion: applied.at(-1) ?? version,
  };
}
