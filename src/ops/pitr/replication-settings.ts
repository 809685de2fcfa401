import type { Config } from '../../config/resolve-config.js';
import { parseDatabaseUrl } from '../../domain/database-url.js';
import type { ScheduleSettings } from '../schedule/schedule-settings.js';

/**
 * The SQLite file a server replicates continuously, or undefined: replication is on where
 * backups are scheduled unless `ATHANOR_PITR=0`, or wherever `ATHANOR_PITR=1`; PostgreSQL
 * archives its own WAL through pgBackRest instead.
 */
export function replicatedDatabaseFile(
  config: Pick<Config, 'pitr' | 'databaseUrl'>,
  settings: Pick<ScheduleSettings, 'schedule'>,
): string | undefined {
  const on = config.pitr ?? settings.schedule !== undefined;
  const location = parseDatabaseUrl(config.databaseUrl);
  if (!on || location?.backend !== 'sqlite' || location.file === ':memory:') return undefined;
  return location.file;
}

/**
 * Which engine keeps the configured database restorable to a point in time: pgBackRest's WAL
 * archive for PostgreSQL, the server's own WAL replication for SQLite.
 */
export function pitrEngine(config: Pick<Config, 'databaseUrl'>): 'pgbackrest' | 'sqlite-replication' {
  return parseDatabaseUrl(config.databaseUrl)?.backend === 'postgres' ? 'pgbackrest' : 'sqlite-replication';
}
