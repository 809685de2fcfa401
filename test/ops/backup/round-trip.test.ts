import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { readManifest } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import type { BackendName } from '../../../src/store/backend.js';
import { checkSchema, getMigrationStatus, migrate } from '../../../src/store/migrator.js';
import { migrations as releaseMigrations } from '../../../src/store/migrations/index.js';
import { getMaintenance } from '../../../src/ops/maintenance.js';
import { openStore } from '../../../src/store/open-store.js';
import {
  backendNames,
  describeEachBackend,
  freshDatabaseUrl,
  postgresAdminUrl,
  tempDir,
} from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { freshStore } from '../../helpers/store.js';
import {
  configFor,
  dumpDatabase,
  freshTarget,
  migrationsWithKitchenSink,
  populate,
  withoutAudit,
} from './fixtures.js';

const none = { mode: 'none' } as const;
const noKeys = { identities: [], passphrases: [] };
const available = (backend: BackendName) => backend === 'sqlite' || postgresAdminUrl() !== '';

describeEachBackend('backup round trip', (backend) => {
  const dir = tempDir();

  for (const into of backendNames) {
    it.runIf(available(into))(`restores into ${into} exactly the rows that were backed up`, async () => {
      const { store, url } = await freshStore(backend, dir, { migrated: false });
      await migrate(store, { lockTimeoutMs: 10_000, migrations: migrationsWithKitchenSink });
      await populate(store, { rows: 120, kitchenSink: true });
      const before = await dumpDatabase(store);
      const target = freshTarget(dir);
      // A small chunk size makes every table span several chunk files.
      const { manifest } = await createBackup({
        config: configFor(url, dir),
        target,
        encryption: none,
        chunkBytes: 2048,
      });
      expect(manifest.backend).toBe(backend);
      expect(manifest.schema.version).toBe(900);
      expect(manifest.tables.find((t) => t.name === 'kitchen_sink')?.chunks.length).toBeGreaterThan(2);
      expect(manifest.tables.find((t) => t.name === 'identities')?.rowCount).toBe(120);
      const order = manifest.tables.map((t) => t.name);
      expect(order.indexOf('identities')).toBeLessThan(order.indexOf('identity_scopes'));

      const intoUrl = await freshDatabaseUrl(into, dir);
      const result = await restoreBackup({
        target,
        backup: 'latest',
        config: configFor(intoUrl, dir),
        keys: noKeys,
        migrations: migrationsWithKitchenSink,
      });
      expect(result).toMatchObject({
        backupId: manifest.id,
        backend: into,
        backupBackend: backend,
        rows: manifest.totals.rows,
      });
      const restored = await openStore(configFor(intoUrl, dir));
      try {
        expect(withoutAudit(await dumpDatabase(restored), 'backup.restore')).toEqual(before);
        expect(await checkSchema(restored, migrationsWithKitchenSink)).toEqual([]);
        const audit = await restored.db
          .selectFrom('audit_log')
          .selectAll()
          .where('action', '=', 'backup.restore')
          .execute();
        expect(audit).toHaveLength(1);
        // Identity sequences continue after the restored rows.
        await restored.db
          .insertInto('audit_log')
          .values({ at: new Date().toISOString(), actor: 't', action: 'after.restore', outcome: 'ok' })
          .execute();
      } finally {
        await restored.close();
      }

      const verification = await verifyBackup({
        target,
        backup: manifest.id,
        mode: 'full',
        keys: noKeys,
        migrations: migrationsWithKitchenSink,
      });
      expect(verification).toMatchObject({ ok: true, problems: [], rows: manifest.totals.rows });
    });
  }

  it('restores a backup from an older schema at its version, then migrates it forward', async () => {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { lockTimeoutMs: 10_000, to: 1 });
    await populate(store, { rows: 10 });
    const target = freshTarget(dir);
    const { manifest } = await createBackup({ config: configFor(url, dir), target, encryption: none });
    expect(manifest.schema.version).toBe(1);

    const intoUrl = await freshDatabaseUrl(backend, dir);
    const result = await restoreBackup({
      target,
      backup: manifest.id,
      config: configFor(intoUrl, dir),
      keys: noKeys,
    });
    const release = releaseMigrations.map((m) => m.id);
    expect(result.backupSchemaVersion).toBe(1);
    expect(result.schemaVersion).toBe(Math.max(...release));
    expect(result.appliedMigrations).toEqual(release.filter((id) => id > 1));
    const restored = await openStore(configFor(intoUrl, dir));
    try {
      const status = await getMigrationStatus(restored);
      expect(status.state).toBe('up_to_date');
      const forward = status.applied.filter((a) => a.id > 1);
      for (const applied of forward) expect(applied.backup_id).toBe(manifest.id);
      expect(await checkSchema(restored)).toEqual([]);
      expect(await restored.db.selectFrom('identities').select('identifier').execute()).toHaveLength(10);
    } finally {
      await restored.close();
    }
  });

  it('refuses a backup from a newer release before touching the database', async () => {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { lockTimeoutMs: 10_000, migrations: migrationsWithKitchenSink });
    const target = freshTarget(dir);
    const { manifest } = await createBackup({ config: configFor(url, dir), target, encryption: none });
    const intoUrl = await freshDatabaseUrl(backend, dir);
    await expect(
      restoreBackup({ target, backup: manifest.id, config: configFor(intoUrl, dir), keys: noKeys }),
    ).rejects.toMatchObject({
      code: 'backup_incompatible',
      message: expect.stringContaining('newer than this release'),
    });
    if (intoUrl.startsWith('sqlite:')) expect(existsSync(intoUrl.slice('sqlite:'.length))).toBe(false);
  });

  it('athanor backup create, list, verify and restore work from the command line', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 20 });
    const before = await dumpDatabase(store);
    const targetUrl = freshTarget(dir).url;
    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: targetUrl };

    const created = await runCli(['backup', 'create', '--json'], { env });
    expect(created.code, created.stderr).toBe(0);
    const summary = JSON.parse(created.stdout) as { id: string; rows: number; backend: string };
    expect(summary).toMatchObject({
      backend,
      rows: Object.values(before).reduce((n, rows) => n + rows.length, 0),
    });
    const manifest = await readManifest(openObjectStore(targetUrl), summary.id);
    expect(manifest.files.every((f) => f.sha256.length === 64)).toBe(true);

    const quick = await runCli(['backup', 'verify', summary.id, '--quick'], { env });
    expect(quick.code, quick.stderr).toBe(0);
    const full = await runCli(['backup', 'verify', '--json'], { env });
    expect(full.code, full.stderr).toBe(0);
    expect(JSON.parse(full.stdout)).toMatchObject({ backupId: summary.id, mode: 'full', ok: true });
    const listed = await runCli(['backup', 'list', '--json'], { env });
    expect(listed.code, listed.stderr).toBe(0);
    const entries = JSON.parse(listed.stdout) as { id: string; verification: { ok: boolean } | null }[];
    expect(entries.map((b) => [b.id, b.verification?.ok])).toEqual([[summary.id, true]]);

    // Restoring over the live database is refused: it holds data.
    const refused = await runCli(['backup', 'restore', 'latest'], { env });
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain('--force');
    expect((await dumpDatabase(store)).identities).toEqual(before.identities);

    const intoUrl = await freshDatabaseUrl(backend, dir);
    const restored = await runCli(['backup', 'restore', 'latest', '--database-url', intoUrl, '--json'], {
      env,
    });
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ backupId: summary.id });
    const intoStore = await openStore(configFor(intoUrl, dir));
    try {
      expect(withoutAudit(await dumpDatabase(intoStore), 'backup.restore')).toEqual(before);
    } finally {
      await intoStore.close();
    }

    const actions = (
      await store.db
        .selectFrom('audit_log')
        .select(['action', 'outcome'])
        .where('action', 'like', 'backup.%')
        .execute()
    ).map((a) => `${a.action}:${a.outcome}`);
    expect(actions).toEqual([
      'backup.create:ok',
      'backup.verify:ok',
      'backup.verify:ok',
      'backup.restore:error',
    ]);
  });

  it('restore --force takes a safety backup of the database it replaces', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 5 });
    const original = await dumpDatabase(store);
    const targetUrl = freshTarget(dir).url;
    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: targetUrl };
    const first = JSON.parse((await runCli(['backup', 'create', '--json'], { env })).stdout) as {
      id: string;
    };
    await store.db.deleteFrom('identity_scopes').execute();
    await store.db.deleteFrom('identities').execute();
    await store.db
      .insertInto('settings')
      .values({ key: 'changed', value: 'after', updated_at: 'x' })
      .execute();
    const changed = await dumpDatabase(store);

    const noYes = await runCli(['backup', 'restore', first.id, '--force'], { env });
    expect(noYes.code).toBe(2);
    const forced = await runCli(['backup', 'restore', first.id, '--force', '--yes', '--json'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    const { safetyBackupId } = JSON.parse(forced.stdout) as { safetyBackupId: string };
    expect(safetyBackupId).toBeDefined();

    const reopened = await openStore(configFor(url, dir));
    try {
      const now = await dumpDatabase(reopened);
      expect(now.identities).toEqual(original.identities);
      expect(now.settings).toEqual(original.settings);
    } finally {
      await reopened.close();
    }
    // The safety backup holds the replaced contents.
    const check = await freshDatabaseUrl(backend, dir);
    await restoreBackup({
      target: openObjectStore(targetUrl),
      backup: safetyBackupId,
      config: configFor(check, dir),
      keys: noKeys,
    });
    const safety = await openStore(configFor(check, dir));
    try {
      const dump = await dumpDatabase(safety);
      // Taken while the restore held maintenance mode; restoring it ends that maintenance.
      const maintenance = (row: unknown) => (row as { key: string }).key === 'maintenance';
      expect(dump.settings?.filter((row) => !maintenance(row))).toEqual(changed.settings);
      expect((await getMaintenance(safety)).on).toBe(false);
      expect(dump.identities).toEqual([]);
    } finally {
      await safety.close();
    }
  });
});
