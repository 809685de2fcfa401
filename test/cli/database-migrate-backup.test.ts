import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { listBackups } from '../../src/ops/backup/backup-target.js';
import { migrate } from '../../src/store/migrator.js';
import { migrations as releaseMigrations } from '../../src/store/migrations/index.js';
import { openStore } from '../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';
import { configFor, dumpDatabase, freshTarget, populate, withoutAudit } from '../ops/backup/fixtures.js';

interface MigrateJson {
  applied: { id: number }[];
  databaseVersion: number;
  backupId: string | null;
  undo: string | null;
}

describeEachBackend('athanor database migrate takes a backup first', (backend) => {
  const dir = tempDir();

  /** A database with data at migration 1, as the release before this one left it. */
  async function atMigrationOne() {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { to: 1, lockTimeoutMs: 10_000 });
    await populate(store, { rows: 10 });
    const target = freshTarget(dir);
    const cli = (...args: string[]) =>
      runCli(['database', 'migrate', ...args], {
        env: { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url },
      });
    return { store, url, target, cli };
  }

  it('records the backup with each migration, and the printed undo restores the schema before it', async () => {
    const { store, url, target, cli } = await atMigrationOne();
    const before = await dumpDatabase(store);
    const result = await cli('--json');
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as MigrateJson;
    expect(out.applied.map((a) => a.id)).toEqual(releaseMigrations.slice(1).map((m) => m.id));
    expect(out.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(out.undo).toBe(`athanor backup restore ${out.backupId} --force --no-migrate`);
    const recorded = await store.db.selectFrom('athanor_migrations').select(['id', 'backup_id']).execute();
    expect(recorded).toEqual([
      { id: 1, backup_id: null },
      ...releaseMigrations.slice(1).map((m) => ({ id: m.id, backup_id: out.backupId })),
    ]);
    const [backup] = await listBackups(target);
    expect(backup?.id).toBe(out.backupId);
    expect(backup?.manifest?.schema.version).toBe(1);
    expect(backup?.manifest?.reason).toBe(`pre-migrate 1 to ${releaseMigrations.at(-1)?.id}`);

    // Undo exactly as printed (plus --yes, as there is no terminal to confirm on).
    const [, ...undoArgs] = (out.undo ?? '').split(' ');
    const undone = await runCli([...undoArgs, '--yes', '--json'], {
      env: { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url },
    });
    expect(undone.code, undone.stderr).toBe(0);
    // A SQLite restore renames a new file into place: read it through a new connection.
    const restored = await openStore(configFor(url, dir));
    try {
      const applied = await restored.db.selectFrom('athanor_migrations').select('id').orderBy('id').execute();
      expect(applied).toEqual([{ id: 1 }]);
      expect(withoutAudit(await dumpDatabase(restored), 'backup.restore')).toEqual(before);
    } finally {
      await restored.close();
    }
  });

  it('prints how to go back, and holds maintenance mode only while migrating', async () => {
    const { store, target, cli } = await atMigrationOne();
    const result = await cli();
    expect(result.code, result.stderr).toBe(0);
    const actions = (await store.db.selectFrom('audit_log').select('action').orderBy('id').execute()).map(
      (a) => a.action,
    );
    const order = ['maintenance.on', 'database.migrate', 'maintenance.off'].map((a) => actions.indexOf(a));
    expect(
      order.every((i) => i >= 0),
      actions.join(' '),
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(result.stderr).toContain('maintenance mode on');
    const [backup] = await listBackups(target);
    expect(result.stderr).toContain(`backup ${backup?.id} taken`);
    expect(result.stdout).toContain(`to undo: athanor backup restore ${backup?.id} --force --no-migrate`);
  });

  it('--no-backup skips it, and so does a database with nothing pending or nothing in it', async () => {
    const { store, target, cli } = await atMigrationOne();
    const skipped = await cli('--no-backup', '--json');
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(JSON.parse(skipped.stdout)).toMatchObject({ backupId: null, undo: null });
    expect(await listBackups(target)).toEqual([]);
    const ids = await store.db.selectFrom('athanor_migrations').select('backup_id').execute();
    expect(ids.every((row) => row.backup_id === null)).toBe(true);

    const again = await cli('--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ applied: [], backupId: null });
    expect(await listBackups(target)).toEqual([]);

    const emptyUrl = await freshDatabaseUrl(backend, dir);
    const fresh = await runCli(['database', 'migrate', '--json'], {
      env: { ATHANOR_DATABASE_URL: emptyUrl, ATHANOR_BACKUP_TARGET: target.url },
    });
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ backupId: null });
    expect(await listBackups(target)).toEqual([]);
  });

  it('--plan and --to still work, and take no backup', async () => {
    const { store, target, cli } = await atMigrationOne();
    const plan = await cli('--plan', '--json');
    expect(plan.code, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as { plan: unknown[] }).plan).toHaveLength(releaseMigrations.length - 1);
    expect(await listBackups(target)).toEqual([]);
    const to = await cli('--to', '1', '--json');
    expect(to.code, to.stderr).toBe(0);
    expect(JSON.parse(to.stdout)).toMatchObject({ applied: [], databaseVersion: 1, backupId: null });
    const rows = await store.db.selectFrom('athanor_migrations').select('id').execute();
    expect(rows).toEqual([{ id: 1 }]);
  });

  it('applies nothing when the backup fails, and says how to go on', async () => {
    const { store, url } = await atMigrationOne();
    const blocker = path.join(dir, `blocker-${backend}`);
    writeFileSync(blocker, 'not a directory\n');
    const result = await runCli(['database', 'migrate', '--backup-target', `file:${blocker}/backups`], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    // The target's parent is a file, not a directory: a bad --backup-target value, so exit 2.
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no migration applied: the backup taken before migrating failed');
    expect(result.stderr).toContain('(from --backup-target)');
    expect(result.stderr).toContain('--no-backup');
    const rows = await store.db.selectFrom('athanor_migrations').select('id').execute();
    expect(rows).toEqual([{ id: 1 }]);
    expect(await listBackups(openObjectStore(`file:${blocker}/backups`))).toEqual([]);
  });
});
