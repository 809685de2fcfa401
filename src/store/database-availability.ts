import { AthanorError } from '../domain/errors.js';
import { sqliteUnavailable } from './dialects/index.js';

/** Seconds a client is told to wait (Retry-After) while a dependency is unavailable. */
export const dependencyRetryAfterSeconds = 5;

/**
 * The error as `database_unavailable` when it means the state store cannot be used right now (a
 * lost or refused PostgreSQL connection, a full or failing SQLite disk); undefined otherwise.
 */
export function asDatabaseUnavailable(error: unknown): AthanorError | undefined {
  if (error instanceof AthanorError) return error.code === 'database_unavailable' ? error : undefined;
  return sqliteUnavailable(error);
}
