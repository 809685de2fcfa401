import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openPostgresSnapshot } from '../../../src/ops/backup/snapshot-postgres.js';
import type { Row, Snapshot } from '../../../src/ops/backup/snapshot.js';
import { addIdentity } from '../../../src/service/identities.js';
import { postgresAdminUrl, tempDir } from '../../helpers/backends.js';
import { freshStore } from '../../helpers/store.js';

async function readAll(snapshot: Snapshot, name: string): Promise<Row[]> {
  const table = snapshot.tables.find((t) => t.name === name);
  if (!table) throw new Error(`no table ${name}`);
  const rows: Row[] = [];
  for await (const batch of snapshot.batches(table)) rows.push(...batch);
  return rows;
}

it.runIf(postgresAdminUrl() !== '')(
  'a PostgreSQL backup reads tables at the same time on several connections, all at the one point it opened',
  async () => {
    const dir = tempDir();
    const { store, url } = await freshStore('postgres', dir);
    const add = (identifier: string) =>
      addIdentity(store, 'tester', {
        kind: 'user',
        identifier,
        key: `${identifier}-key-0000000`,
        scopes: ['org-camp-proj'],
      });
    await add('before');
    const snapshot = await openPostgresSnapshot(url, { parallelTables: 3 });
    try {
      expect(snapshot.parallelTables).toBe(3);
      // Committed after the snapshot opened: no connection of the backup may see it.
      await add('after');
      const [identities, scopes, audit] = await Promise.all([
        readAll(snapshot, 'identities'),
        readAll(snapshot, 'identity_scopes'),
        readAll(snapshot, 'audit_log'),
      ]);
      expect(identities.map((r) => r.identifier)).toEqual(['before']);
      expect(scopes.map((r) => r.identifier)).toEqual(['before']);
      expect(audit.some((r) => String(r.target).includes('after'))).toBe(false);
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from pg_stat_activity where application_name = 'athanor-backup' and datname = current_database()`.execute(
        store.db,
      );
      expect(rows[0]?.n).toBe(3);
    } finally {
      await snapshot.close();
    }
  },
);
