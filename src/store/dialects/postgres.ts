import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Kysely, LogEvent, PostgresPool, PostgresPoolClient } from 'kysely';
import {
  CompiledQuery,
  Kysely as KyselyClass,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
} from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { AthanorError } from '../../domain/errors.js';
import type { Backend, ErrorClass } from '../backend.js';
import { preparedMarker } from '../backend.js';
import { recordingKysely } from './recorder.js';
import { postgresComputeStatements } from './postgres/compute.js';

// COUNT(*) and bigint columns arrive as strings by default; every bigint Athanor stores fits in a
// double, and one number type on both backends keeps the service layer simple.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** Advisory lock key that serializes migrations (and restores) on one database: "ATHN". */
export const migrationLockKey = 0x4154484e;

export function createPostgresPool(url: string, maxConnections = 10): pg.Pool {
  // `postgres:` alone means: take every connection setting from the standard PG* variables.
  const pool = new pg.Pool({
    connectionString: url === 'postgres:' ? undefined : url,
    max: maxConnections,
    application_name: 'athanor',
    // Bounded: while the server is unreachable a request answers 503 within this time, not later.
    connectionTimeoutMillis: 5_000,
  });
  // A client that loses its server (a restart, a failover) emits 'error' whether idle or checked
  // out; unhandled, that event would end the process. The pool drops such clients, the query in
  // flight fails with database_unavailable, and the next request connects afresh.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => lostClients.add(client));
    // The hot statements are prepared once per connection. After five runs PostgreSQL may switch
    // such a statement to one generic plan, chosen with the statistics of that moment; right
    // after a bulk submission (before autovacuum analyzes it) that plan can scan and lock far
    // more than it should: claims came back empty while work waited, at 5-8 times the database
    // CPU per task. Plan every run with its parameters; the parse is still saved. Queued before
    // any query the connection is handed out for.
    client.query('set plan_cache_mode = force_custom_plan').catch(() => {});
  });
  return pool;
}

/** Bumped when PostgreSQL refuses a prepared statement whose result columns changed (a migration). */
let preparedGeneration = 0;
const preparedNames = new Map<string, string>();

function preparedName(text: string): string {
  const key = `${preparedGeneration}:${text}`;
  let name = preparedNames.get(key);
  if (!name) {
    name = `athanor_${preparedGeneration}_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    if (preparedNames.size >= 1000) preparedNames.clear();
    preparedNames.set(key, name);
  }
  return name;
}

/** Marks a statement as `COPY … FROM STDIN` whose only parameter is the stream of its data. */
const copyFromMarker = '/* athanor:copy-from */ ';

/**
 * Streams `source` (PostgreSQL's COPY text format) into `table` with one `COPY … FROM STDIN` on the
 * caller's connection, so inside its transaction; returns the rows copied. Kysely has no COPY, so
 * the statement travels to the pool client below marked, with the stream as its parameter.
 */
export async function copyIntoPostgres(
  db: Kysely<unknown>,
  table: string,
  columns: readonly string[],
  source: Readable,
): Promise<number> {
  const id = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const text = `${copyFromMarker}copy ${id(table)} (${columns.map(id).join(', ')}) from stdin`;
  const result = await db.executeQuery(CompiledQuery.raw(text, [source]));
  return Number(result.numAffectedRows ?? 0);
}

async function runCopyFrom(client: pg.PoolClient, text: string, source: Readable) {
  const sink = client.query(copyFrom(text.slice(copyFromMarker.length)));
  await pipeline(source, sink);
  // Reported as a write so that Kysely passes the row count on as `numAffectedRows`.
  return { command: 'UPDATE', rowCount: sink.rowCount, rows: [] };
}

/** Clients whose connection failed: every error they report means the database went away. */
const lostClients = new WeakSet<object>();

function unavailable(cause: unknown): AthanorError {
  if (cause instanceof AthanorError) return cause;
  return new AthanorError(
    'database_unavailable',
    `the database is unavailable (${(cause as Error)?.message ?? String(cause)}); retry shortly`,
    { cause },
  );
}

/**
 * The pool as Kysely sees it: a lost connection, a refused one or a server that is starting up
 * surfaces as `database_unavailable` (503 and Retry-After over HTTP) instead of a bare driver error.
 */
class AvailabilityPool implements PostgresPool {
  constructor(private readonly pool: pg.Pool) {}

  async connect(): Promise<PostgresPoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (cause) {
      throw unavailable(cause);
    }
    // Kysely passes a cursor object only when the dialect is given a cursor class; this one is not.
    return {
      query: (async (sqlText: string, parameters: readonly unknown[]) => {
        const values = parameters as unknown[];
        const prepared = sqlText.startsWith(preparedMarker);
        const run = () =>
          sqlText.startsWith(copyFromMarker)
            ? runCopyFrom(client, sqlText, values[0] as Readable)
            : prepared
              ? client.query({ name: preparedName(sqlText), text: sqlText, values })
              : client.query(sqlText, values);
        try {
          try {
            return await run();
          } catch (error) {
            // "cached plan must not change result type": a table the statement reads changed
            // shape since it was prepared. Prepare it again under a new name (outside a
            // transaction this retry succeeds; inside one the transaction fails as a whole).
            if (!prepared || (error as { code?: unknown } | null)?.code !== '0A000') throw error;
            preparedGeneration += 1;
            return await run();
          }
        } catch (error) {
          if (lostClients.has(client) || classifyPostgresError(error) === 'unavailable')
            throw unavailable(error);
          throw error;
        }
      }) as unknown as PostgresPoolClient['query'],
      release: () => client.release(),
    };
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

export function createPostgresKysely<DB>(pool: pg.Pool, log?: (sql: string) => void): Kysely<DB> {
  return new KyselyClass<DB>({
    dialect: new PostgresDialect({ pool: new AvailabilityPool(pool) }),
    ...(log ? { log: (event: LogEvent) => log(event.query.sql) } : {}),
  });
}

function classifyPostgresError(error: unknown): ErrorClass | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === '23505') return 'unique_violation';
  if (code === '23503') return 'foreign_key_violation';
  if (code === '55P03' || code === '40001' || code === '40P01') return 'busy';
  if (code === '42P01') return 'undefined_table';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '3D000')
    return 'unavailable';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || code === 'ECONNRESET') {
    return 'unavailable';
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How often a transaction that lost a deadlock is run before its error reaches the caller. */
const maxTransactionAttempts = 4;

export const postgresBackend: Backend = {
  name: 'postgres',
  migrationHelpers: {
    autoIncrementId: (table, column) =>
      table.addColumn(column, 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity()),
    binaryType: 'bytea',
  },

  async writeTransaction(db, fn) {
    // PostgreSQL breaks a deadlock (or a serialization failure) by rolling one transaction back;
    // that one did nothing, so running it again is the answer, not a 500 for its client.
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.transaction().execute((trx) => fn(trx));
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if ((code !== '40P01' && code !== '40001') || attempt >= maxTransactionAttempts) throw error;
        await sleep(5 + Math.random() * 20 * attempt);
      }
    }
  },

  async withMigrationLock(db, timeoutMs, fn) {
    return db.connection().execute(async (conn) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { rows } = await sql<{ locked: boolean }>`
          select pg_try_advisory_lock(${migrationLockKey}) as locked`.execute(conn);
        if (rows[0]?.locked) break;
        if (Date.now() >= deadline) {
          throw new AthanorError(
            'lock_timeout',
            `another migration or restore holds this database's migration lock; waited ${timeoutMs} ms. ` +
              `Retry when it finishes, or raise ATHANOR_LOCK_TIMEOUT_MS`,
          );
        }
        await sleep(100);
      }
      try {
        return await fn(conn);
      } finally {
        await sql`select pg_advisory_unlock(${migrationLockKey})`.execute(conn);
      }
    });
  },

  async describeSchema(db) {
    const lines = new Map<string, string>();
    const columns = await sql<{
      table_name: string;
      column_name: string;
      data_type: string;
      is_nullable: string;
      has_default: boolean;
    }>`select table_name, column_name, data_type, is_nullable, column_default is not null as has_default
       from information_schema.columns where table_schema = current_schema()`.execute(db);
    for (const c of columns.rows) {
      lines.set(
        `column ${c.table_name}.${c.column_name}`,
        `${c.data_type}${c.is_nullable === 'NO' ? ' not null' : ''}${c.has_default ? ' default' : ''}`,
      );
    }
    const indexes = await sql<{ indexname: string; indexdef: string }>`
      select indexname, replace(indexdef, ' ON ' || current_schema() || '.', ' ON ') as indexdef
      from pg_indexes where schemaname = current_schema()`.execute(db);
    for (const i of indexes.rows) lines.set(`index ${i.indexname}`, i.indexdef);
    const constraints = await sql<{ conname: string; relname: string; def: string }>`
      select c.conname, t.relname, pg_get_constraintdef(c.oid) as def
      from pg_constraint c join pg_class t on t.oid = c.conrelid
      where c.connamespace = current_schema()::regnamespace`.execute(db);
    for (const c of constraints.rows) lines.set(`constraint ${c.relname}.${c.conname}`, c.def);
    return lines;
  },

  async withScratchDatabase(db, fn) {
    const schemaName = `athanor_scratch_${randomBytes(6).toString('hex')}`;
    const rollback = Symbol('rollback');
    let result: Awaited<ReturnType<typeof fn>> | undefined;
    try {
      // Everything happens in one transaction that is always rolled back: the scratch schema
      // never becomes visible to anyone else and leaves nothing behind.
      await db.transaction().execute(async (trx) => {
        await sql`create schema ${sql.id(schemaName)}`.execute(trx);
        await sql`set local search_path to ${sql.id(schemaName)}`.execute(trx);
        result = await fn(trx as unknown as Kysely<unknown>);
        throw rollback;
      });
    } catch (error) {
      if (error !== rollback) throw error;
    }
    return result as Awaited<ReturnType<typeof fn>>;
  },

  async tableExists(db, table) {
    const { rows } = await sql<{ found: boolean }>`
      select to_regclass(quote_ident(current_schema()) || '.' || quote_ident(${table})) is not null as found`.execute(
      db,
    );
    return rows[0]?.found === true;
  },

  async dropAllTables(db) {
    const { rows } = await sql<{ tablename: string }>`
      select tablename from pg_tables where schemaname = current_schema()`.execute(db);
    if (rows.length === 0) return;
    await sql`drop table if exists ${sql.join(rows.map((r) => sql.table(r.tablename)))} cascade`.execute(db);
  },

  classifyError: classifyPostgresError,

  compute: postgresComputeStatements,
  atomic: (db, fn) => fn(db),
  claimStatementsPerHub: 8,
  async listTables(db) {
    const { rows } = await sql<{ tablename: string }>`
      select tablename from pg_tables where schemaname = current_schema() order by tablename`.execute(db);
    return rows.map((r) => r.tablename);
  },
  async tryLeaderLock(trx, name) {
    const { rows } = await sql<{ locked: boolean }>`
      select pg_try_advisory_xact_lock(hashtext(${`athanor:${name}`})) as locked`.execute(trx);
    return rows[0]?.locked === true;
  },

  async queryPlan(db, query) {
    const { rows } = await sql<{ 'QUERY PLAN': string }>`explain ${query}`.execute(db);
    return rows.map((r) => r['QUERY PLAN']);
  },

  async refreshStatistics(db, table, addedRows) {
    if (addedRows <= 0) return;
    // Autovacuum analyzes a table only after its naptime (a minute by default); until then a claim
    // statement planned for a table that was empty when last analyzed reads every entry of a hub
    // and sorts them, instead of the first few entries of the claim-order index.
    const { rows } = await sql<{ reltuples: number }>`
      select reltuples from pg_class
      where oid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(${table}))`.execute(db);
    const counted = rows[0]?.reltuples;
    if (counted === undefined || (counted >= 0 && addedRows <= counted / 10)) return;
    await sql`analyze (skip_locked) ${sql.id(table)}`.execute(db);
  },

  createRecorder: () =>
    recordingKysely({
      createAdapter: () => new PostgresAdapter(),
      createQueryCompiler: () => new PostgresQueryCompiler(),
      createIntrospector: (k) => new PostgresIntrospector(k),
    }),
};
