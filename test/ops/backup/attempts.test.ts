import type { Kysely } from 'kysely';
import { expect, it } from 'vitest';
import type { Config } from '../../../src/config/resolve-config.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import { migrate } from '../../../src/store/migrator.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../../helpers/backends.js';
import { networkWithTasks, queueClients } from '../../helpers/queue.js';
import { startTestServer } from '../../helpers/server.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, dumpDatabase, freshTarget } from './fixtures.js';

const none = { mode: 'none' } as const;
const noKeys = { identities: [], passphrases: [] };

describeEachBackend('attempt history in backups', (backend) => {
  const dir = tempDir();

  it('backs up, verifies and restores every attempt, closed and open, with the results and live logs they name', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('backup', 'host-b');
    const [a, b, c] = await compute.claim(id, { count: 3 });
    await compute.submitResult(a!.task, a!.leaseToken, 'ok', Buffer.from('{"a":1}'));
    await compute.submitResult(b!.task, b!.leaseToken, 'failed', Buffer.from('Error: b'));
    await compute.release(c!.task, c!.leaseToken);
    const [d] = await compute.claim(id, { count: 1 });
    // The open attempt has sent some of its log while it runs.
    await compute.heartbeat(id, [
      { task: d!.task, leaseToken: d!.leaseToken, log: { offset: 0, text: 'hi\n' } },
    ]);
    const before = await dumpDatabase(server.store);
    expect(before.task_attempts).toHaveLength(4);
    expect(before.attempt_log_chunks).toHaveLength(1);

    const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
    const target = freshTarget(dir);
    const { manifest } = await createBackup({ config, target, encryption: none });
    expect(manifest.tables.find((t) => t.name === 'task_attempts')?.rowCount).toBe(4);
    const order = manifest.tables.map((t) => t.name);
    expect(order.indexOf('task_attempts')).toBeGreaterThan(order.indexOf('results'));
    expect(order.indexOf('attempt_log_chunks')).toBeGreaterThan(order.indexOf('task_attempts'));
    const verified = await verifyBackup({ target, backup: manifest.id, mode: 'full', keys: noKeys });
    expect(verified.problems).toEqual([]);

    const intoUrl = await freshDatabaseUrl(backend, dir);
    await restoreBackup({ target, backup: manifest.id, config: configFor(intoUrl, dir), keys: noKeys });
    const restored = await openStore(configFor(intoUrl, dir));
    try {
      const after = await dumpDatabase(restored);
      expect(after.task_attempts).toEqual(before.task_attempts);
      expect(after.attempt_log_chunks).toEqual(before.attempt_log_chunks);
      expect(after.tasks).toEqual(before.tasks);
    } finally {
      await restored.close();
    }
  });

  it('restores a backup taken before attempt history and migrates it forward', async () => {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { lockTimeoutMs: 10_000, to: 3 });
    const at = '2026-01-02T03:04:05.678Z';
    const old = store.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    await old
      .insertInto('transformations')
      .values({ key: 'tf-1', scope: 'org-camp-p', name: 't', protocol: 'echo', inputs: '{}', created_at: at })
      .execute();
    await old
      .insertInto('tasks')
      .values({
        id: 'task-old',
        scope: 'org-camp-p',
        transformation_key: 'tf-1',
        status: 'error',
        created_at: at,
        created_by: 'user:alice',
        updated_at: at,
        last_error: 'Error: old',
      })
      .execute();
    const target = freshTarget(dir);
    const { manifest } = await createBackup({ config: configFor(url, dir), target, encryption: none });
    expect(manifest.schema.version).toBe(3);

    const intoUrl = await freshDatabaseUrl(backend, dir);
    const result = await restoreBackup({
      target,
      backup: manifest.id,
      config: configFor(intoUrl, dir),
      keys: noKeys,
    });
    expect(result.appliedMigrations).toContain(5);
    const restored = await openStore(configFor(intoUrl, dir));
    try {
      const task = await restored.db.selectFrom('tasks').selectAll().executeTakeFirstOrThrow();
      expect(task).toMatchObject({ id: 'task-old', status_changed_at: at, status_reason: null });
      expect(await restored.db.selectFrom('task_attempts').selectAll().execute()).toEqual([]);
    } finally {
      await restored.close();
    }
  });
});
