import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AthanorError } from '../domain/errors.js';
import { appVersion } from '../version.js';
import type { Backend } from './backend.js';
import { postgresBackend, sqliteBackend } from './dialects/index.js';
import { migrations as releaseMigrations } from './migrations/index.js';
import type { Migration } from './migrations/migration.js';
import type { AthanorMigrationsTable, Database } from './schema.js';
import type { Store } from './open-store.js';

export type AppliedMigration = Readonly<AthanorMigrationsTable>;

export interface DriftProblem {
  readonly id: number;
  readonly name: string;
  readonly problem: 'checksum_changed' | 'missing_from_code' | 'renamed';
  readonly message: string;
}

/** Where a database stands against this release's migrations. */
export type MigrationState = 'up_to_date' | 'pending' | 'drift' | 'newer' | 'newer_breaking';

export interface MigrationStatus {
  readonly state: MigrationState;
  /** Highest applied migration id, 0 for an empty database. */
  readonly databaseVersion: number;
  /** Highest migration id this release knows. */
  readonly releaseVersion: number;
  readonly applied: readonly AppliedMigration[];
  readonly pending: readonly Migration[];
  /** Applied migrations this release does not know because they come from a newer release. */
  readonly newer: readonly AppliedMigration[];
  readonly drift: readonly DriftProblem[];
}

const checksums = new WeakMap<Migration, string>();

/**
 * A migration's checksum: sha256 of the SQL it issues on both backends. Editing what a migration
 * does changes it; reformatting its source does not.
 */
export async function migrationChecksum(migration: Migration): Promise<string> {
  const cached = checksums.get(migration);
  if (cached) return cached;
  const hash = createHash('sha256');
  for (const backend of [sqliteBackend, postgresBackend]) {
    hash.update(`${backend.name}\n`);
    for (const statement of await migrationStatements(migration, backend)) hash.update(`${statement}\n`);
  }
  const checksum = hash.digest('hex');
  checksums.set(migration, checksum);
  return checksum;
}

/** The SQL a migration would run on a backend, for `database migrate --plan`. */
export async function migrationStatements(migration: Migration, backend: Backend): Promise<string[]> {
  const recorder = backend.createRecorder();
  await migration.up(recorder.db, backend.migrationHelpers);
  return recorder.statements;
}

export async function ensureMigrationsTable(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('athanor_migrations')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('checksum', 'text', (c) => c.notNull())
    .addColumn('breaking', 'integer', (c) => c.notNull())
    .addColumn('applied_at', 'text', (c) => c.notNull())
    .addColumn('app_version', 'text', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('backup_id', 'text')
    .execute();
}

async function readApplied(db: Kysely<Database>, backend: Backend): Promise<AppliedMigration[]> {
  if (!(await backend.tableExists(db, 'athanor_migrations'))) return [];
  return db.selectFrom('athanor_migrations').selectAll().orderBy('id').execute();
}

/** What an applied migration is compared on: a database's `athanor_migrations` row or a backup's record. */
export type RecordedMigration = Pick<AppliedMigration, 'id' | 'name' | 'checksum'> &
  Partial<Pick<AppliedMigration, 'breaking' | 'app_version'>>;

/**
 * Compares recorded migrations with a release's: which are pending, which come from a newer
 * release, and which drifted (missing from the code below the release's version, renamed, or
 * with a changed checksum). The one comparison the migrator and restore both use.
 */
export async function compareMigrations<Row extends RecordedMigration>(
  applied: readonly Row[],
  known: readonly Migration[],
): Promise<Omit<MigrationStatus, 'applied' | 'newer'> & { applied: readonly Row[]; newer: readonly Row[] }> {
  const releaseVersion = known.reduce((max, m) => Math.max(max, m.id), 0);
  const byId = new Map(known.map((m) => [m.id, m]));
  const appliedIds = new Set(applied.map((a) => a.id));
  const drift: DriftProblem[] = [];
  const newer: Row[] = [];
  for (const row of applied) {
    const migration = byId.get(row.id);
    if (!migration) {
      if (row.id > releaseVersion) newer.push(row);
      else {
        drift.push({
          id: row.id,
          name: row.name,
          problem: 'missing_from_code',
          message:
            `migration ${row.id} (${row.name}) is applied in the database but this release does not have it. ` +
            `Run the release that applied it, or restore a backup taken before it`,
        });
      }
      continue;
    }
    if (migration.name !== row.name) {
      drift.push({
        id: row.id,
        name: row.name,
        problem: 'renamed',
        message: `migration ${row.id} is '${row.name}' in the database but '${migration.name}' in this release`,
      });
      continue;
    }
    const checksum = await migrationChecksum(migration);
    if (checksum !== row.checksum) {
      drift.push({
        id: row.id,
        name: row.name,
        problem: 'checksum_changed',
        message:
          `migration ${row.id} (${row.name}) changed after it was applied: the database recorded checksum ` +
          `${row.checksum.slice(0, 12)}, this release has ${checksum.slice(0, 12)}. ` +
          `Restore the migration as it was applied; changes belong in a new migration`,
      });
    }
  }
  const pending = known.filter((m) => !appliedIds.has(m.id));
  const databaseVersion = applied.reduce((max, a) => Math.max(max, a.id), 0);
  const state: MigrationState =
    drift.length > 0
      ? 'drift'
      : newer.some((n) => n.breaking)
        ? 'newer_breaking'
        : pending.length > 0
          ? 'pending'
          : newer.length > 0
            ? 'newer'
            : 'up_to_date';
  return { state, databaseVersion, releaseVersion, applied, pending, newer, drift };
}

export async function getMigrationStatus(
  store: Store,
  known: readonly Migration[] = releaseMigrations,
): Promise<MigrationStatus> {
  return compareMigrations(await readApplied(store.db, store.backend), known);
}

function driftError(status: MigrationStatus): AthanorError {
  return new AthanorError('migration_drift', status.drift.map((d) => d.message).join('\n'), {
    details: { drift: status.drift },
  });
}

function newerBreakingError(status: MigrationStatus): AthanorError {
  const breaking = status.newer.filter((n) => n.breaking).map((n) => `${n.id} (${n.name}, ${n.app_version})`);
  return new AthanorError(
    'schema_newer',
    `the database carries breaking migration ${breaking.join(', ')} from a newer release; this release ` +
      `(${appVersion}, migration ${status.releaseVersion}) cannot run against it. Run the newer release`,
  );
}

/** Runs one migration's `up` inside the caller's transaction; returns how long it took, in ms. */
export async function runMigration(
  trx: Kysely<Database>,
  backend: Backend,
  migration: Migration,
): Promise<number> {
  const started = performance.now();
  await migration.up(trx as unknown as Kysely<unknown>, backend.migrationHelpers);
  return Math.round(performance.now() - started);
}

/** Records a migration as applied, with its checksum, in the caller's transaction. */
export async function recordMigration(
  trx: Kysely<Database>,
  migration: Migration,
  options: { readonly durationMs: number; readonly backupId?: string | undefined },
): Promise<void> {
  await trx
    .insertInto('athanor_migrations')
    .values({
      id: migration.id,
      name: migration.name,
      checksum: await migrationChecksum(migration),
      breaking: migration.breaking ? 1 : 0,
      applied_at: new Date().toISOString(),
      app_version: appVersion,
      duration_ms: options.durationMs,
      backup_id: options.backupId ?? null,
    })
    .execute();
}

export interface MigrateOptions {
  /** Stop after this migration id; default: the newest. */
  readonly to?: number | undefined;
  readonly lockTimeoutMs: number;
  /** The backup taken just before, recorded with each migration applied. */
  readonly backupId?: string | undefined;
  /** Called as each migration starts and ends (for progress output). */
  readonly onProgress?: (event: {
    phase: 'start' | 'done';
    migration: Migration;
    durationMs?: number;
  }) => void;
  /** For tests: the migrations to apply instead of this release's. */
  readonly migrations?: readonly Migration[];
}

export interface AppliedResult {
  readonly id: number;
  readonly name: string;
  readonly durationMs: number;
}

/**
 * Applies pending migrations in order, each in its own transaction, under the migration lock.
 * Drift or a newer breaking migration stops it before anything runs. Safe to run concurrently:
 * every process re-reads what is applied inside the lock, so each migration runs exactly once.
 */
export async function migrate(store: Store, options: MigrateOptions): Promise<AppliedResult[]> {
  const known = options.migrations ?? releaseMigrations;
  const to = options.to ?? Infinity;
  if (options.to !== undefined && !known.some((m) => m.id === options.to)) {
    throw new AthanorError(
      'invalid_argument',
      `there is no migration ${options.to} in this release; known: ${known.map((m) => m.id).join(', ')}`,
    );
  }
  const backend = store.backend;
  const results: AppliedResult[] = [];
  try {
    await backend.withMigrationLock(store.db, options.lockTimeoutMs, async (conn) => {
      await ensureMigrationsTable(conn as Kysely<unknown>);
      for (;;) {
        const step = await backend.writeTransaction(conn, async (trx) => {
          const status = await compareMigrations(await readApplied(trx, backend), known);
          if (status.state === 'drift') throw driftError(status);
          if (status.state === 'newer_breaking') throw newerBreakingError(status);
          if (options.to !== undefined && status.databaseVersion > options.to) {
            throw new AthanorError(
              'invalid_argument',
              `the database is at migration ${status.databaseVersion}, past ${options.to}; migrations only go ` +
                `forward. To go back, restore the backup taken before the migration`,
            );
          }
          const next = status.pending.find((m) => m.id <= to);
          if (!next) return undefined;
          options.onProgress?.({ phase: 'start', migration: next });
          let durationMs: number;
          try {
            durationMs = await runMigration(trx, backend, next);
          } catch (cause) {
            throw new AthanorError(
              'migration_failed',
              `migration ${next.id} (${next.name}) failed and was rolled back; the database is unchanged at ` +
                `migration ${status.databaseVersion}: ${(cause as Error).message}`,
              { cause },
            );
          }
          await recordMigration(trx, next, { durationMs, backupId: options.backupId });
          options.onProgress?.({ phase: 'done', migration: next, durationMs });
          return { id: next.id, name: next.name, durationMs };
        });
        if (!step) break;
        results.push(step);
      }
    });
  } catch (error) {
    throw translateLockError(store, error, options.lockTimeoutMs);
  }
  return results;
}

/** Maps a backend's "busy" error to the lock-timeout error operators can act on. */
export function translateLockError(store: Store, error: unknown, waitedMs: number): unknown {
  if (store.backend.classifyError(error) === 'busy') {
    return new AthanorError(
      'lock_timeout',
      `the database stayed locked by another writer (waited up to ${waitedMs} ms). ` +
        `Retry when it finishes, or raise ATHANOR_BUSY_TIMEOUT_MS`,
      { cause: error },
    );
  }
  return error;
}

/** The server's start-up verdict on a database. */
export type Compatibility =
  | { readonly verdict: 'compatible'; readonly status: MigrationStatus }
  | { readonly verdict: 'newer_compatible'; readonly status: MigrationStatus; readonly warning: string };

/**
 * What the server calls at start: compatible, or newer but non-breaking (with a warning) pass;
 * behind, drift, or a newer breaking migration throw an error with exit code 6 (3 for drift).
 */
export async function assertSchemaCompatible(
  store: Store,
  known: readonly Migration[] = releaseMigrations,
): Promise<Compatibility> {
  const status = await getMigrationStatus(store, known);
  switch (status.state) {
    case 'up_to_date':
      return { verdict: 'compatible', status };
    case 'newer':
      return {
        verdict: 'newer_compatible',
        status,
        warning:
          `the database is at migration ${status.databaseVersion}, newer than this release ` +
          `(${status.releaseVersion}); the newer migrations are not breaking, so this release keeps running`,
      };
    case 'drift':
      throw driftError(status);
    case 'newer_breaking':
      throw newerBreakingError(status);
    case 'pending':
      throw new AthanorError(
        'schema_behind',
        status.databaseVersion === 0
          ? `the database at ${store.displayUrl} is not initialized: run 'athanor database init'`
          : `database schema is at migration ${status.databaseVersion} but this release needs ` +
              `${status.releaseVersion}: run 'athanor database migrate' (or start with --migrate)`,
      );
  }
}

export interface SchemaDifference {
  readonly object: string;
  readonly expected: string | undefined;
  readonly actual: string | undefined;
}

/**
 * Compares the live schema with the one this release's applied migrations produce, built by
 * running them for real in a scratch database that is thrown away.
 */
export async function checkSchema(
  store: Store,
  known: readonly Migration[] = releaseMigrations,
): Promise<SchemaDifference[]> {
  const status = await getMigrationStatus(store, known);
  if (status.state === 'drift') throw driftError(status);
  const appliedIds = new Set(status.applied.map((a) => a.id));
  const backend = store.backend;
  const expected = await backend.withScratchDatabase(store.db, async (scratch) => {
    await ensureMigrationsTable(scratch);
    for (const migration of known.filter((m) => appliedIds.has(m.id))) {
      await migration.up(scratch, backend.migrationHelpers);
    }
    return backend.describeSchema(scratch);
  });
  const actual = await backend.describeSchema(store.db);
  const differences: SchemaDifference[] = [];
  for (const [object, definition] of expected) {
    const live = actual.get(object);
    if (live !== definition) differences.push({ object, expected: definition, actual: live });
  }
  for (const [object, definition] of actual) {
    if (!expected.has(object)) differences.push({ object, expected: undefined, actual: definition });
  }
  return differences.sort((a, b) => a.object.localeCompare(b.object));
}

/** Drops every table and migrates the empty database to this release. */
export async function resetDatabase(store: Store, options: MigrateOptions): Promise<AppliedResult[]> {
  await store.backend.dropAllTables(store.db);
  return migrate(store, options);
}
