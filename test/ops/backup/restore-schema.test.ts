import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import type { Store } from '../../../src/store/open-store.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir, testConfig } from '../../helpers/backends.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, freshTarget, populate } from './fixtures.js';

/** Every index and key of the database, as its own definitions. */
async function schemaObjects(store: Store): Promise<string[]> {
  if (store.backend.name === 'sqlite') {
    const { rows } = await sql<{ name: string; sql: string | null }>`
      select name, sql from sqlite_master where type = 'index' order by name`.execute(store.db);
    return rows.map((r) => `${r.name}: ${r.sql ?? '(automatic)'}`);
  }
  const indexes = await sql<{ name: string; definition: string }>`
    select indexname as name, indexdef as definition from pg_indexes
    where schemaname = current_schema() order by indexname`.execute(store.db);
  const constraints = await sql<{ name: string; definition: string }>`
    select c.conname as name, t.relname || ' ' || pg_get_constraintdef(c.oid) as definition
    from pg_constraint c join pg_class t on t.oid = c.conrelid
    where c.connamespace = current_schema()::regnamespace order by c.conname`.execute(store.db);
  return [...indexes.rows, ...constraints.rows].map((r) => `${r.name}: ${r.definition}`);
}

describeEachBackend('a restored database', (backend) => {
  const dir = tempDir();

  it('has every index, key and foreign key a migrated database has, each enforced', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 50 });
    const target = freshTarget(dir);
    const { manifest } = await createBackup({
      config: configFor(url, dir),
      target,
      encryption: { mode: 'none' },
    });
    const intoUrl = await freshDatabaseUrl(backend, dir);
    await restoreBackup({
      target,
      backup: manifest.id,
      config: configFor(intoUrl, dir),
      keys: { identities: [], passphrases: [] },
    });
    const restored = await openStore(testConfig(intoUrl, dir));
    try {
      expect(await schemaObjects(restored)).toEqual(await schemaObjects(store));
      // The primary key is back: a second row with a restored key is refused.
      const existing = await restored.db.selectFrom('identities').selectAll().executeTakeFirstOrThrow();
      await expect(restored.db.insertInto('identities').values(existing).execute()).rejects.toThrow();
    } finally {
      await restored.close();
    }
  });
});
