import { expect, it } from 'vitest';
import { startServer } from '../../src/server/start-server.js';
import { migrations as releaseMigrations } from '../../src/store/migrations/index.js';
import { openStore } from '../../src/store/open-store.js';
import { describeEachBackend, tempDir, testConfig } from '../helpers/backends.js';
import { freshStore } from '../helpers/store.js';

describeEachBackend('startServer --migrate', (backend) => {
  const dir = tempDir();

  it('migrates an empty database, audits it, serves, and closes the database on close', async () => {
    const { url, store } = await freshStore(backend, dir, { migrated: false });
    const notes: string[] = [];
    const server = await startServer(
      { ...testConfig(url, dir), sweepIntervalMs: 50 },
      { api: 'all', host: '127.0.0.1', port: 0, migrate: true, note: (line) => notes.push(line) },
    );
    try {
      expect(notes.join('\n')).toContain(
        `applied migrations ${releaseMigrations.map((m) => m.id).join(', ')}`,
      );
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', schema: releaseMigrations.length });
      // The default `serve` profile schedules no backups.
      expect(server.backups.schedule).toBeUndefined();
    } finally {
      await server.close();
    }
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    const audit = await store.db
      .selectFrom('audit_log')
      .select(['action', 'outcome', 'details'])
      .where('action', '=', 'database.migrate')
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]?.outcome).toBe('ok');
    expect(JSON.parse(audit[0]?.details ?? '{}')).toMatchObject({
      from: 0,
      to: releaseMigrations.length,
      by: 'serve --migrate',
    });
  });

  it('refuses to start on a drifted database and records the failed migration in the audit log', async () => {
    const { url, store } = await freshStore(backend, dir);
    await store.db
      .updateTable('athanor_migrations')
      .set({ checksum: 'f'.repeat(64) })
      .where('id', '=', 1)
      .execute();
    await expect(
      startServer(testConfig(url, dir), { api: 'all', host: '127.0.0.1', port: 0, migrate: true }),
    ).rejects.toMatchObject({ code: 'migration_drift' });
    const check = await openStore(testConfig(url, dir));
    try {
      const failures = await check.db
        .selectFrom('audit_log')
        .select(['outcome', 'details'])
        .where('action', '=', 'database.migrate')
        .execute();
      expect(failures).toHaveLength(1);
      expect(failures[0]?.outcome).toBe('error');
      expect(JSON.parse(failures[0]?.details ?? '{}')).toMatchObject({ code: 'migration_drift' });
    } finally {
      await check.close();
    }
  });
});
