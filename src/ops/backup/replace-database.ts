import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Config } from '../../config/resolve-config.js';
import type { Backend } from '../../store/backend.js';
import { parseDatabaseUrl, redactUrl, sqliteDatabaseUrl } from '../../domain/database-url.js';
import type { Store } from '../../store/open-store.js';
import { openStore } from '../../store/open-store.js';
import type { Database } from '../../store/schema.js';
import {
  dropPostgresTables,
  postgresTableLoader,
  resetPostgresSequences,
  suspendPostgresForeignKeys,
  suspendPostgresIndexes,
} from './snapshot-postgres.js';
import {
  deferSqliteForeignKeys,
  detachSqliteFile,
  replaceSqliteFile,
  sqliteTableLoader,
  suspendSqliteIndexes,
} from './snapshot-sqlite.js';
import type { TableLoader } from './snapshot-postgres.js';

/** The database a restore replaces, and how its contents are swapped in one step. */
export interface ReplaceTarget {
  readonly backend: Backend;
  readonly displayUrl: string;
  /**
   * Readies the new tables for a bulk load in any row order (inside the transaction, after the
   * tables exist). The returned function ends the load: foreign keys back and checked, sequences
   * moved past the loaded ids.
   */
  prepareLoad(trx: Kysely<Database>): Promise<() => Promise<void>>;
  /** The fastest way this backend has to load many rows into one table (inside the transaction). */
  tableLoader(trx: Kysely<Database>, table: string, columns: readonly string[]): TableLoader;
}

/**
 * Replaces the whole contents of the database at `config.databaseUrl` with what `load` writes, in
 * one atomic step: on PostgreSQL one transaction (under the migration lock) that drops every table
 * first; on SQLite a new file next to the old one, renamed into place once complete. If `load`
 * throws or the process dies, the database is as it was.
 */
export async function replaceDatabase<T>(
  config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs' | 'lockTimeoutMs'>,
  load: (trx: Kysely<Database>, target: ReplaceTarget) => Promise<T>,
): Promise<T> {
  const url = config.databaseUrl;
  const location = parseDatabaseUrl(url);
  if (location?.backend === 'sqlite') {
    const { file } = location;
    removeStaleTemporaries(file);
    const temporary = `${file}.restore-${randomBytes(4).toString('hex')}.tmp`;
    const removeTemporary = () => {
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(temporary + suffix, { force: true });
    };
    let store: Store | undefined;
    try {
      store = await openStore(
        { databaseUrl: sqliteDatabaseUrl(temporary), busyTimeoutMs: config.busyTimeoutMs },
        { create: true },
      );
      // defer_foreign_keys (set as the transaction starts) already holds every check until commit.
      const target: ReplaceTarget = {
        backend: store.backend,
        displayUrl: redactUrl(url),
        prepareLoad: async (trx) => suspendSqliteIndexes(trx as Kysely<unknown>),
        tableLoader: (trx, table, columns) => sqliteTableLoader(trx as Kysely<unknown>, table, columns),
      };
      const result = await store.transaction(async (trx) => {
        await deferSqliteForeignKeys(trx as Kysely<unknown>);
        return load(trx, target);
      });
      await detachSqliteFile(store.db as Kysely<unknown>);
      await store.close();
      store = undefined;
      replaceSqliteFile(temporary, file, config);
      return result;
    } catch (error) {
      await store?.close().catch(() => {});
      if (existsSync(temporary)) removeTemporary();
      throw error;
    }
  }
  const store = await openStore(config, { create: true });
  const target: ReplaceTarget = {
    backend: store.backend,
    displayUrl: store.displayUrl,
    async prepareLoad(trx) {
      const restoreForeignKeys = await suspendPostgresForeignKeys(trx as Kysely<unknown>);
      const restoreIndexes = await suspendPostgresIndexes(trx as Kysely<unknown>);
      return async () => {
        await restoreIndexes();
        await restoreForeignKeys();
        await resetPostgresSequences(trx as Kysely<unknown>);
      };
    },
    tableLoader: (trx, table, columns) => postgresTableLoader(trx as Kysely<unknown>, table, columns),
  };
  try {
    return await store.backend.withMigrationLock(store.db, config.lockTimeoutMs, (conn) =>
      store.backend.writeTransaction(conn, async (trx) => {
        await dropPostgresTables(trx as Kysely<unknown>);
        return load(trx, target);
      }),
    );
  } finally {
    await store.close();
  }
}

/** Removes what a restore killed before its rename left next to the database (never the database). */
function removeStaleTemporaries(file: string): void {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.restore-`;
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix) && /\.tmp(-wal|-shm|-journal)?$/.test(name))
      rmSync(path.join(dir, name), { force: true });
  }
}

/** Tables of the database that hold rows, ignoring migration records and the audit log. */
export async function tablesHoldingData(store: Store): Promise<string[]> {
  const names = await store.backend.listTables(store.db);
  const holding: string[] = [];
  for (const name of names) {
    if (name === 'athanor_migrations' || name === 'audit_log') continue;
    const { rows } = await sql<{ found: number }>`select 1 as found from ${sql.id(name)} limit 1`.execute(
      store.db,
    );
    if (rows.length > 0) holding.push(name);
  }
  return holding;
}
