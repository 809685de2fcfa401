import { parseDatabaseUrl } from '../../domain/database-url.js';
import type { Snapshot } from './snapshot.js';
import { openPostgresSnapshot } from './snapshot-postgres.js';
import { openSqliteSnapshot } from './snapshot-sqlite.js';

/** Opens a consistent snapshot of the database at `databaseUrl` (`sqlite:<path>` or `postgres://…`). */
export async function openSnapshot(
  databaseUrl: string,
  options: { readonly busyTimeoutMs: number },
): Promise<Snapshot> {
  const location = parseDatabaseUrl(databaseUrl);
  if (location?.backend === 'sqlite') return openSqliteSnapshot(location.file, options);
  return openPostgresSnapshot(databaseUrl);
}
