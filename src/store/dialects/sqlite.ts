import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import type { Kysely, LogEvent } from 'kysely';
import {
  Kysely as KyselyClass,
  SqliteAdapter,
  SqliteDialect,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely';
import { AthanorError } from '../../domain/errors.js';
import type { Backend, ErrorClass } from '../backend.js';
import { recordingKysely } from './recorder.js';
import { sqliteComputeStatements } from './sqlite/compute.js';

export interface SqliteOptions {
  /** Create the file (and its directory) when missing; otherwise a missing file is an error. */
  readonly create: boolean;
  readonly busyTimeoutMs: number;
  readonly readonly?: boolean;
}

/** Opens a SQLite database in WAL mode with a busy timeout and foreign keys on. */
export function openSqliteDatabase(file: string, options: SqliteOptions): SqliteDatabase.Database {
  if (file !== ':memory:' && options.create) mkdirSync(path.dirname(file), { recursive: true });
  const missing = () =>
    new AthanorError(
      'database_unavailable',
      `no database at ${file}: run 'athanor database init' to create it, or set ATHANOR_DATABASE_URL`,
    );
  if (file !== ':memory:' && !options.create && !existsSync(file)) throw missing();
  let raw: SqliteDatabase.Database;
  try {
    raw = new SqliteDatabase(file, { fileMustExist: !options.create, readonly: options.readonly ?? false });
  } catch (cause) {
    if ((cause as { code?: string }).code === 'SQLITE_CANTOPEN') throw missing();
    throw new AthanorError(
      'database_unavailable',
      `cannot open the SQLite database at ${file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  raw.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
  if (!options.readonly) {
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
  }
  raw.pragma('foreign_keys = ON');
  return raw;
}

/** How often the checkpoint thread copies committed WAL pages into the database file. */
const checkpointIntervalMs = 250;
/** Page cache of a connection whose checkpoints run in the background, in KiB. */
const commitCacheKiB = 2048;

// The checkpoint thread: its own connection runs passive checkpoints, which take no write lock
// and never wait, so the serving connection neither blocks on them nor is blocked by them.
const checkpointerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.file, { fileMustExist: true });
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.postMessage('stopped');
});
`;

/** Stops the checkpoint thread; the connection's own close then checkpoints what is left. */
export type StopCheckpointer = () => Promise<void>;

/**
 * Moves the WAL checkpoints of `raw` (a WAL database file) to a thread of their own. By default
 * SQLite checkpoints inside the commit that takes the WAL past 1000 pages: after a transaction
 * that wrote 100,000 rows that commit holds the event loop for hundreds of milliseconds.
 * Should the thread fail, the connection checkpoints at commit again.
 */
export function checkpointInBackground(raw: SqliteDatabase.Database, file: string): StopCheckpointer {
  const defaultPages = Number(raw.pragma('wal_autocheckpoint', { simple: true }));
  raw.pragma('wal_autocheckpoint = 0');
  // A commit also writes the pages still dirty in the page cache: a 16 MiB cache took 40-150 ms
  // to write out after a large transaction, SQLite's default 2 MiB a fraction of that.
  raw.pragma(`cache_size = -${commitCacheKiB}`);
  const worker = new Worker(checkpointerSource, {
    eval: true,
    workerData: {
      driverPath: createRequire(import.meta.url).resolve('better-sqlite3'),
      file,
      intervalMs: checkpointIntervalMs,
    },
  });
  worker.unref();
  let running = true;
  const fallBack = () => {
    if (!running) return;
    running = false;
    if (raw.open) raw.pragma(`wal_autocheckpoint = ${defaultPages}`);
  };
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  return async () => {
    if (!running) return;
    const stopped = new Promise<void>((resolve) => {
      worker.once('message', () => resolve());
      worker.once('exit', () => resolve());
    });
    worker.postMessage('stop');
    await stopped;
    running = false;
    await worker.terminate();
  };
}

export function createSqliteKysely<DB>(
  raw: SqliteDatabase.Database,
  log?: (sql: string) => void,
): Kysely<DB> {
  return new KyselyClass<DB>({
    dialect: new SqliteDialect({ database: withStatementCache(raw) }),
    ...(log ? { log: (event: LogEvent) => log(event.query.sql) } : {}),
  });
}

const statementCacheSize = 256;

/**
 * Kysely prepares every query it runs; preparing costs about as much as running a small query.
 * This keeps the most recently used statements by their SQL text. A statement still being
 * iterated (a streamed query) is busy, so a second user of the same SQL gets a fresh one.
 */
function withStatementCache(raw: SqliteDatabase.Database) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => raw.close(),
    prepare(text: string): SqliteDatabase.Statement {
      const cached = cache.get(text);
      if (cached && !cached.busy) {
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      const statement = raw.prepare(text);
      if (!cached) {
        cache.set(text, statement);
        if (cache.size > statementCacheSize) cache.delete(cache.keys().next().value!);
      }
      return statement;
    },
  };
}

async function immediateTransaction<DB, T>(db: Kysely<DB>, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  // BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that later writes can
  // fail with SQLITE_BUSY without waiting, when another writer committed in between.
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (error) {
      try {
        await sql`rollback`.execute(conn);
      } catch (rollbackError) {
        // After SQLITE_FULL or an I/O error SQLite may already have rolled the transaction back
        // itself; the original error is the one that explains what happened.
        if (classifySqliteError(error) !== 'unavailable') throw rollbackError;
      }
      throw error;
    }
  });
}

function classifySqliteError(error: unknown): ErrorClass | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE')
    return 'unique_violation';
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key_violation';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR'))
    return 'unavailable';
  return undefined;
}

/**
 * A SQLite error that means the database cannot be used right now (disk full, I/O error) as
 * `database_unavailable`, naming the cause and the way out; undefined for every other error.
 */
export function sqliteUnavailable(error: unknown): AthanorError | undefined {
  if (classifySqliteError(error) !== 'unavailable') return undefined;
  const code = (error as { code: string }).code;
  const reason =
    code === 'SQLITE_FULL'
      ? 'the disk holding the SQLite database is full'
      : code === 'SQLITE_CANTOPEN'
        ? 'the SQLite database file cannot be opened'
        : 'the disk holding the SQLite database reported an I/O error';
  return new AthanorError(
    'database_unavailable',
    `${reason} (${code}); nothing was written. Free space or fix the disk: the server resumes by itself`,
    { cause: error },
  );
}

export const sqliteBackend: Backend = {
  name: 'sqlite',
  migrationHelpers: {
    autoIncrementId: (table, column) =>
      table.addColumn(column, 'integer', (c) => c.primaryKey().autoIncrement()),
    binaryType: 'blob',
  },

  writeTransaction: immediateTransaction,

  async withMigrationLock(db, _timeoutMs, fn) {
    // Every migration runs in its own BEGIN IMMEDIATE transaction, which is the lock on SQLite;
    // the wait is bounded by the connection's busy timeout.
    return db.connection().execute(fn);
  },

  async describeSchema(db) {
    const rows = await sql<{ type: string; name: string; sql: string | null }>`
      select type, name, sql from sqlite_master
      where name not like 'sqlite_%' and sql is not null order by type, name`.execute(db);
    return new Map(rows.rows.map((r) => [`${r.type} ${r.name}`, normalizeSql(r.sql ?? '')]));
  },

  async withScratchDatabase(_db, fn) {
    const raw = openSqliteDatabase(':memory:', { create: true, busyTimeoutMs: 0 });
    const scratch = createSqliteKysely<unknown>(raw);
    try {
      return await fn(scratch);
    } finally {
      await scratch.destroy();
    }
  },

  async tableExists(db, table) {
    const { rows } = await sql<{ n: number }>`
      select count(*) as n from sqlite_master where type = 'table' and name = ${table}`.execute(db);
    return Number(rows[0]?.n ?? 0) > 0;
  },

  async dropAllTables(db) {
    await db.connection().execute(async (conn) => {
      await sql`pragma foreign_keys = off`.execute(conn);
      try {
        const tables = await sql<{ name: string }>`
          select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(conn);
        for (const { name } of tables.rows) await sql`drop table if exists ${sql.table(name)}`.execute(conn);
      } finally {
        await sql`pragma foreign_keys = on`.execute(conn);
      }
    });
  },

  classifyError: classifySqliteError,

  compute: sqliteComputeStatements,
  atomic: immediateTransaction,
  claimStatementsPerHub: 1,
  async listTables(db) {
    const { rows } = await sql<{ name: string }>`
      select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`.execute(
      db,
    );
    return rows.map((r) => r.name);
  },
  async tryLeaderLock() {
    return true;
  },
  async refreshStatistics() {},

  async queryPlan(db, query) {
    const { rows } = await sql<{ detail: string }>`explain query plan ${query}`.execute(db);
    return rows.map((r) => r.detail);
  },

  createRecorder: () =>
    recordingKysely({
      createAdapter: () => new SqliteAdapter(),
      createQueryCompiler: () => new SqliteQueryCompiler(),
      createIntrospector: (k) => new SqliteIntrospector(k),
    }),
};

function normalizeSql(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/"/g, '').trim();
}
