import { statSync } from 'node:fs';
import type { Kysely } from 'kysely';
import type { Config } from '../config/resolve-config.js';
import { AthanorError } from '../domain/errors.js';
import type { Backend } from './backend.js';
import {
  checkpointInBackground,
  createPostgresKysely,
  createPostgresPool,
  createSqliteKysely,
  openSqliteDatabase,
  postgresBackend,
  sqliteBackend,
} from './dialects/index.js';
import { parseDatabaseUrl, redactUrl } from '../domain/database-url.js';
import type { Database } from './schema.js';

/** An open state store: the Kysely handle plus what differs between backends. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly backend: Backend;
  /** The database URL with any password hidden, for messages. */
  readonly displayUrl: string;
  /** Runs `fn` in a write transaction (see Backend.writeTransaction). */
  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /**
   * Whether the database this store opened was replaced since (a SQLite file a restore renamed
   * over it: this store still reads the old one). Always false on PostgreSQL.
   */
  replaced(): boolean;
  /**
   * Internal, for the history benchmark only: claims and results write no attempt rows. Never
   * set in a running installation: attempts are part of what Athanor records.
   */
  readonly skipHistoryWrites?: boolean;
  /**
   * Internal, for the events benchmark only: completed tasks write no event. Never set in a
   * running installation: webhooks, event readers and strategies depend on every event.
   */
  readonly skipEventWrites?: boolean;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Create a missing SQLite file; default false (a missing file is an error naming `database init`). */
  readonly create?: boolean;
  /** Maximum PostgreSQL connections; default 10. */
  readonly maxConnections?: number;
  /**
   * SQLite: copy the write-ahead log into the database file from a thread of its own instead of
   * inside a commit, so a large write never holds the event loop while it is copied. For
   * long-running servers; default false (the commit that fills the log copies it).
   */
  readonly backgroundCheckpoints?: boolean;
  /** See {@link Store.skipHistoryWrites}; default false. */
  readonly skipHistoryWrites?: boolean;
  /** See {@link Store.skipEventWrites}; default false. */
  readonly skipEventWrites?: boolean;
  /** Called with the SQL of every statement run, transaction control included (statement counts). */
  readonly onStatement?: (sql: string) => void;
}

export async function openStore(
  config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const url = config.databaseUrl;
  const displayUrl = redactUrl(url);
  let db: Kysely<Database>;
  let backend: Backend;
  let replaced = () => false;
  let stopCheckpoints = async () => {};
  const location = parseDatabaseUrl(url);
  if (location?.backend === 'sqlite') {
    const { file } = location;
    const raw = openSqliteDatabase(file, {
      create: options.create ?? false,
      busyTimeoutMs: config.busyTimeoutMs,
    });
    if (file !== ':memory:') {
      const opened = statSync(file).ino;
      replaced = () => statSync(file, { throwIfNoEntry: false })?.ino !== opened;
      if (options.backgroundCheckpoints) stopCheckpoints = checkpointInBackground(raw, file);
    }
    db = createSqliteKysely<Database>(raw, options.onStatement);
    backend = sqliteBackend;
  } else {
    db = createPostgresKysely<Database>(createPostgresPool(url, options.maxConnections), options.onStatement);
    backend = postgresBackend;
    try {
      await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
    } catch (cause) {
      await db.destroy();
      const reason = (
        cause instanceof AthanorError && cause.cause instanceof Error ? cause.cause : (cause as Error)
      ).message;
      throw new AthanorError(
        'database_unavailable',
        `cannot reach PostgreSQL at ${displayUrl}: ${reason}. Check the server is running and ATHANOR_DATABASE_URL (or PG* variables)`,
        { cause },
      );
    }
  }
  return {
    db,
    backend,
    displayUrl,
    transaction: (fn) => backend.writeTransaction(db, fn),
    replaced,
    ...(options.skipHistoryWrites ? { skipHistoryWrites: true } : {}),
    ...(options.skipEventWrites ? { skipEventWrites: true } : {}),
    async close() {
      await stopCheckpoints();
      await db.destroy();
    },
  };
}
