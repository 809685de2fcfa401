import path from 'node:path';

/** The database backends Athanor runs on; `store/dialects/<name>.ts` holds each one's specifics. */
export type BackendName = 'sqlite' | 'postgres';

/** Where a database URL points: a SQLite file (or `:memory:`), or a PostgreSQL connection string. */
export type DatabaseLocation =
  | { readonly backend: Extract<BackendName, 'sqlite'>; readonly file: string }
  | { readonly backend: Extract<BackendName, 'postgres'>; readonly url: string };

const sqlitePrefix = 'sqlite:';

/**
 * Reads a database URL: `sqlite:<path>`, or `postgres://…`, `postgresql://…` or a bare `postgres:`
 * (the PG* variables then say where). Anything else is undefined: the caller names the setting.
 */
export function parseDatabaseUrl(url: string): DatabaseLocation | undefined {
  if (url.startsWith(sqlitePrefix)) return { backend: 'sqlite', file: url.slice(sqlitePrefix.length) };
  if (url.startsWith('postgres://') || url.startsWith('postgresql://') || url === 'postgres:')
    return { backend: 'postgres', url };
  return undefined;
}

/** The database URL of the SQLite file at `file`. */
export function sqliteDatabaseUrl(file: string): string {
  return `${sqlitePrefix}${file}`;
}

/**
 * The URL with a relative SQLite path made absolute against `cwd` (`:memory:` and PostgreSQL
 * URLs as they are); undefined when it is no database URL.
 */
export function absoluteDatabaseUrl(url: string, cwd: string): string | undefined {
  const location = parseDatabaseUrl(url);
  if (location?.backend !== 'sqlite') return location?.url;
  return location.file === ':memory:' ? url : sqliteDatabaseUrl(path.resolve(cwd, location.file));
}

/** A URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}
