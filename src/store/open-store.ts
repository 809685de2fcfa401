import type { Kysely } from 'kysely';
import type { Config } from '../config/resolve-config.js';
import { redactUrl } from '../config/resolve-config.js';
import { AthanorError } from '../domain/errors.js';
import type { Backend } from './backend.js';
import {
  createPostgresKysely,
  createPostgresPool,
  createSqliteKysely,
  openSqliteDatabase,
  postgresBackend,
  sqliteBackend,
} from './dialects/index.js';
import type { Database } from './schema.js';

/** An open state store: the Kysely handle plus what differs between backends. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly backend: Backend;
  /** The database URL with any password hidden, for messages. */
  readonly displayUrl: string;
  /** Runs `fn` in a write transaction (see Backend.writeTransaction). */
  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Create a missing SQLite file; default false (a missing file is an error naming `database init`). */
  readonly create?: boolean;
  /** Maximum PostgreSQL connections; default 10. */
  readonly maxConnections?: number;
}

export async function openStore(
  config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const url = config.databaseUrl;
  const displayUrl = redactUrl(url);
  let db: Kysely<Database>;
  let backend: Backend;
  if (url.startsWith('sqlite:')) {
    const raw = openSqliteDatabase(url.slice('sqlite:'.length), {
      create: options.create ?? false,
      busyTimeoutMs: config.busyTimeoutMs,
    });
    db = createSqliteKysely<Database>(raw);
    backend = sqliteBackend;
  } else {
    db = createPostgresKysely<Database>(createPostgresPool(url, options.maxConnections));
    backend = postgresBackend;
    try {
      await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
    } catch (cause) {
      await db.destroy();
      throw new AthanorError(
        'database_unavailable',
        `cannot reach PostgreSQL at ${displayUrl}: ${(cause as Error).message}. Check the server is running and ATHANOR_DATABASE_URL (or PG* variables)`,
        { cause },
      );
    }
  }
  return {
    db,
    backend,
    displayUrl,
    transaction: (fn) => backend.writeTransaction(db, fn),
    close: () => db.destroy(),
  };
}
