import type { Kysely } from 'kysely';
import { AthanorError } from '../../domain/errors.js';
import { ensureMigrationsTable, migrationChecksum } from '../../store/migrator.js';
import type { Migration } from '../../store/migrations/migration.js';
import type { Database } from '../../store/schema.js';
import { appVersion } from '../../version.js';
import type { BackupManifest } from './manifest.js';
import type { ArchiveReader } from './read-archive.js';
import type { ReplaceTarget } from './replace-database.js';
import type { Row } from './snapshot.js';

type AnyTables = Record<string, Record<string, unknown>>;

/**
 * Checks that this release can recreate the backup's schema: every migration the backup carries
 * must be one this release has, unchanged. Runs before anything is written.
 */
export async function checkRestorable(manifest: BackupManifest, known: readonly Migration[]): Promise<void> {
  const byId = new Map(known.map((m) => [m.id, m]));
  const releaseVersion = known.reduce((max, m) => Math.max(max, m.id), 0);
  const carried = new Set(manifest.schema.migrations.map((m) => m.id));
  for (const migration of manifest.schema.migrations) {
    const ours = byId.get(migration.id);
    if (!ours) {
      throw new AthanorError(
        'backup_incompatible',
        migration.id > releaseVersion
          ? `backup ${manifest.id} is at migration ${manifest.schema.version}, newer than this release ` +
              `(${appVersion}, migration ${releaseVersion}): restore it with Athanor ${manifest.appVersion} or newer`
          : `backup ${manifest.id} carries migration ${migration.id} (${migration.name}), which this release ` +
              `does not have: restore it with Athanor ${manifest.appVersion}`,
      );
    }
    if (ours.name !== migration.name || (await migrationChecksum(ours)) !== migration.checksum) {
      throw new AthanorError(
        'backup_incompatible',
        `backup ${manifest.id} was taken with a different migration ${migration.id} (${migration.name}) than ` +
          `this release's (${ours.name}): restore it with Athanor ${manifest.appVersion}`,
      );
    }
  }
  const skipped = known.filter((m) => m.id <= manifest.schema.version && !carried.has(m.id));
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

const maxParametersPerInsert = 8000;
const maxRowsPerInsert = 500;

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
  const db = trx as unknown as Kysely<unknown>;
  await ensureMigrationsTable(db);
  for (const migration of options.migrations.filter((m) => m.id <= version)) {
    await migration.up(db, backend.migrationHelpers);
  }
  const finishLoad = await target.prepareLoad(trx);
  const dynamic = trx as unknown as Kysely<AnyTables>;
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
    const batchSize = Math.max(
      1,
      Math.min(maxRowsPerInsert, Math.floor(maxParametersPerInsert / Math.max(1, table.columns.length))),
    );
    let batch: Row[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      try {
        await dynamic.insertInto(table.name).values(batch).execute();
      } catch (cause) {
        throw new AthanorError(
          'backup_incompatible',
          `cannot load table ${table.name} of backup ${manifest.id}: ${(cause as Error).message}`,
          { cause },
        );
      }
      rowsDone += batch.length;
      options.onProgress?.({ table: table.name, rowsDone, rowsTotal });
      batch = [];
    };
    for await (const row of archive.rows(table)) {
      batch.push(row);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  }
  try {
    await finishLoad();
  } catch (cause) {
    throw new AthanorError(
      'backup_incompatible',
      `backup ${manifest.id} loaded, but its rows break a foreign key: ${(cause as Error).message}`,
      { cause },
    );
  }
  const applied: number[] = [];
  if (options.migrateForward) {
    for (const migration of options.migrations.filter((m) => m.id > version)) {
      const started = performance.now();
      try {
        await migration.up(db, backend.migrationHelpers);
      } catch (cause) {
        throw new AthanorError(
          'migration_failed',
          `backup ${manifest.id} loaded, but migration ${migration.id} (${migration.name}) failed on it; the ` +
            `restore was rolled back and the database is unchanged: ${(cause as Error).message}`,
          { cause },
        );
      }
      await trx
        .insertInto('athanor_migrations')
        .values({
          id: migration.id,
          name: migration.name,
          checksum: await migrationChecksum(migration),
          breaking: migration.breaking ? 1 : 0,
          applied_at: new Date().toISOString(),
          app_version: appVersion,
          duration_ms: Math.round(performance.now() - started),
          backup_id: manifest.id,
        })
        .execute();
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
