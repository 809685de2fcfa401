import { expect, it } from 'vitest';
import { sql } from 'kysely';
import { listBackups } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { migrate } from '../../../src/store/migrator.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, freshTarget, migrationsWithKitchenSink, populate } from './fixtures.js';

const none = { mode: 'none' } as const;

describeEachBackend('a backup of values it cannot carry', (backend) => {
  const dir = tempDir();

  it('refuses an integer beyond ±2^53, naming the table, and leaves no backup behind', async () => {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { lockTimeoutMs: 10_000, migrations: migrationsWithKitchenSink });
    await populate(store, { rows: 20, kitchenSink: true });
    // 2^53 + 2: JSON numbers (and the restored row) would silently hold another value.
    await sql`insert into kitchen_sink (part, n, big) values ('huge', 1, 9007199254740994)`.execute(store.db);
    await store.close();
    const target = freshTarget(dir);
    const attempt = createBackup({ config: configFor(url, dir), target, encryption: none });
    await expect(attempt).rejects.toMatchObject({ code: 'backup_incompatible' });
    await expect(attempt).rejects.toThrow(/kitchen_sink\..*big.*2\^53/);
    expect((await listBackups(target)).filter((b) => b.manifest)).toEqual([]);
  });

  it.runIf(backend === 'postgres')('refuses a real that is not finite', async () => {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { lockTimeoutMs: 10_000, migrations: migrationsWithKitchenSink });
    await sql`insert into kitchen_sink (part, n, precise) values ('nan', 1, 'NaN')`.execute(store.db);
    await store.close();
    const attempt = createBackup({ config: configFor(url, dir), target: freshTarget(dir), encryption: none });
    await expect(attempt).rejects.toMatchObject({ code: 'backup_incompatible' });
    await expect(attempt).rejects.toThrow(/kitchen_sink\..*precise/);
  });
});
