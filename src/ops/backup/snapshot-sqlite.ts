import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { CompiledQuery, sql } from 'kysely';
import { AthanorError } from '../../domain/errors.js';
import type { TableLoader } from './snapshot-postgres.js';
import type { Row, RowValue, Snapshot, TableColumn, TableSchema } from './snapshot.js';
import { backupValue, dependencyOrder } from './snapshot.js';

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Opens one read transaction over every table of a SQLite database. In WAL mode the transaction
 * sees the database as of its first read while other connections keep writing.
 */
export function openSqliteSnapshot(file: string, options: { busyTimeoutMs: number }): Snapshot {
  if (!existsSync(file)) {
    throw new AthanorError(
      'database_unavailable',
      `no database at ${file}: check ATHANOR_DATABASE_URL (or --database-url)`,
    );
  }
  // A connection of its own, so the snapshot never shares a transaction with the caller's store.
  const db = new SqliteDatabase(file, { fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
    db.pragma('query_only = ON');
    db.exec('BEGIN');
    // A deferred transaction takes its snapshot at the first read: take it now, before listing tables.
    db.prepare('select count(*) from sqlite_master').get();
    const takenAt = new Date().toISOString();
    const names = db
      .prepare(
        `select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`,
      )
      .pluck()
      .all() as string[];
    const tables = dependencyOrder(names.map((name) => describeTable(db, name)));
    return {
      backend: 'sqlite',
      takenAt,
      point: `sqlite read transaction at ${takenAt}`,
      tables,
      parallelTables: 1,
      batches: (table) => readBatches(db, table),
      async close() {
        if (db.open) {
          if (db.inTransaction) db.exec('COMMIT');
          db.close();
        }
      },
    };
  } catch (error) {
    db.close();
    throw error;
  }
}

function describeTable(db: SqliteDatabase.Database, name: string): TableSchema {
  const info = db.prepare('select name, type, pk from pragma_table_info(?) order by cid').all(name) as {
    name: string;
    type: string;
    pk: number;
  }[];
  const columns: TableColumn[] = info.map((c) => ({ name: c.name, type: c.type.toLowerCase() }));
  const primaryKey = info
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
  const references = db
    .prepare('select distinct "table" from pragma_foreign_key_list(?)')
    .pluck()
    .all(name) as string[];
  return { name, columns, primaryKey, references };
}

const batchRows = 2000;

async function* readBatches(db: SqliteDatabase.Database, table: TableSchema): AsyncGenerator<Row[]> {
  const columns = table.columns.map((c) => c.name);
  const order = (table.primaryKey.length > 0 ? table.primaryKey : columns).map(quote).join(', ');
  // BINARY collation compares text as UTF-8 bytes: the same order PostgreSQL gives with COLLATE "C".
  const statement = db
    .prepare(`select ${columns.map(quote).join(', ')} from ${quote(table.name)} order by ${order}`)
    .safeIntegers(true)
    .raw(true);
  let batch: Row[] = [];
  for (const raw of statement.iterate() as Iterable<unknown[]>) {
    const row: Record<string, string | number | null> = {};
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i] as string;
      row[column] = backupValue(table.name, column, raw[i]);
    }
    batch.push(row);
    if (batch.length >= batchRows) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Makes a freshly written SQLite file self-contained (no WAL beside it), ready to be renamed. */
export async function detachSqliteFile(db: Kysely<unknown>): Promise<void> {
  await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
  await sql`pragma journal_mode = DELETE`.execute(db);
}

/** Defers foreign-key checks to commit inside the current transaction. */
export async function deferSqliteForeignKeys(db: Kysely<unknown>): Promise<void> {
  await sql`pragma defer_foreign_keys = ON`.execute(db);
}

/** Problems `integrity_check` and `foreign_key_check` find in a SQLite file; empty when sound. */
export function checkSqliteFile(file: string): string[] {
  const db = new SqliteDatabase(file, { fileMustExist: true, readonly: true });
  try {
    const problems = (db.pragma('integrity_check') as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .filter((r) => r !== 'ok');
    for (const fk of db.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[]) {
      problems.push(`${fk.table} row ${fk.rowid} references a missing ${fk.parent} row`);
    }
    return problems;
  } finally {
    db.close();
  }
}

/**
 * Puts `newFile` in place of `targetFile` with one rename. The old database's write-ahead log is
 * checkpointed first: a non-empty stale WAL left beside the new file would be replayed into it.
 */
export function replaceSqliteFile(
  newFile: string,
  targetFile: string,
  options: { busyTimeoutMs: number },
): void {
  if (existsSync(newFile + '-wal')) {
    throw new AthanorError('internal', `restored file ${newFile} still has a write-ahead log; not replacing`);
  }
  if (existsSync(targetFile)) {
    const old = new SqliteDatabase(targetFile, { fileMustExist: true });
    try {
      old.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
      const [result] = old.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      if (result && result.busy !== 0) {
        throw new AthanorError(
          'lock_timeout',
          `the database ${targetFile} is in use by another process; stop the server (or put it in ` +
            `maintenance) and retry the restore. Nothing was changed`,
        );
      }
    } finally {
      old.close();
    }
  }
  for (const suffix of ['-wal', '-shm']) rmSync(targetFile + suffix, { force: true });
  fsyncPath(newFile);
  renameSync(newFile, targetFile);
  fsyncPath(path.dirname(targetFile));
}

function fsyncPath(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Names of the database's tables, sorted. */
export async function listSqliteTables(db: Kysely<unknown>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`.execute(
    db,
  );
  return rows.map((r) => r.name);
}

/**
 * Drops the database's own indexes inside the caller's transaction and returns the function that
 * creates them again once the rows are in: one sort per index instead of an index update per row.
 */
export async function suspendSqliteIndexes(db: Kysely<unknown>): Promise<() => Promise<void>> {
  const { rows } = await sql<{ name: string; sql: string }>`
    select name, sql from sqlite_master where type = 'index' and sql is not null order by name`.execute(db);
  for (const index of rows) await sql`drop index ${sql.id(index.name)}`.execute(db);
  return async () => {
    for (const index of rows) await sql.raw(index.sql).execute(db);
  };
}

/** SQLite's limit on parameters in one statement (32766 since 3.32) leaves room for this many. */
const maxParametersPerInsert = 30_000;

/**
 * Inserts rows into a table with multi-row statements whose text is built once per batch size,
 * not once per batch.
 */
export function sqliteTableLoader(
  db: Kysely<unknown>,
  table: string,
  columns: readonly string[],
): TableLoader {
  const perStatement = Math.max(1, Math.floor(maxParametersPerInsert / Math.max(1, columns.length)));
  const head = `insert into ${quote(table)} (${columns.map(quote).join(', ')}) values `;
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const texts = new Map<number, string>();
  const textFor = (count: number) => {
    let text = texts.get(count);
    if (!text) {
      text = head + Array.from({ length: count }, () => tuple).join(', ');
      texts.set(count, text);
    }
    return text;
  };
  return {
    async write(rows) {
      for (let start = 0; start < rows.length; start += perStatement) {
        const part = rows.slice(start, start + perStatement);
        const values: (RowValue | Buffer)[] = [];
        for (const row of part) for (const column of columns) values.push(row[column] ?? null);
        await db.executeQuery(CompiledQuery.raw(textFor(part.length), values));
      }
    },
    end: async () => {},
  };
}
