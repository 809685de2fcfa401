import { afterAll, beforeAll, expect, it } from 'vitest';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { listBackups } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import type { S3Peer } from '../../helpers/s3-peer.js';
import { startS3Peer } from '../../helpers/s3-peer.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, dumpDatabase, fillAuditLog, populate, withoutAudit } from './fixtures.js';

let peer: S3Peer;
beforeAll(async () => {
  peer = await startS3Peer();
});
afterAll(async () => {
  await peer?.stop();
});

describeEachBackend('backups to an S3 target', (backend) => {
  const dir = tempDir();

  it('create, list, verify and restore through s3://', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 40 });
    const before = await dumpDatabase(store);
    const targetUrl = peer.freshUrl();
    const env = { ...peer.env, ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: targetUrl };

    const created = await runCli(['backup', 'create', '--chunk-size', '4096', '--json'], { env });
    expect(created.code, created.stderr).toBe(0);
    const { id, files } = JSON.parse(created.stdout) as { id: string; files: number };
    expect(files).toBeGreaterThan(5);
    const target = openObjectStore(targetUrl, { env: { ...process.env, ...peer.env } });
    expect((await listBackups(target)).map((b) => b.id)).toEqual([id]);

    const verified = await runCli(['backup', 'verify', id, '--json'], { env });
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, mode: 'full' });

    const intoUrl = await freshDatabaseUrl(backend, dir);
    const restored = await runCli(['backup', 'restore', 'latest', '--database-url', intoUrl], { env });
    expect(restored.code, restored.stderr).toBe(0);
    const into = await openStore(configFor(intoUrl, dir));
    try {
      expect(withoutAudit(await dumpDatabase(into), 'backup.restore')).toEqual(before);
    } finally {
      await into.close();
    }
  });

  it('one writer at a time: of two concurrent backups to one bucket prefix, one is refused with the lock error', async () => {
    const { store, url } = await freshStore(backend, dir);
    await fillAuditLog(store, 5_000);
    const target = openObjectStore(peer.freshUrl(), { env: { ...process.env, ...peer.env } });
    const attempt = () =>
      createBackup({
        config: configFor(url, dir),
        target,
        encryption: { mode: 'none' },
        chunkBytes: 16_384,
      }).then(
        (r) => ({ ok: r.manifest.id }),
        (e: unknown) => ({ error: e as { code: string; exitCode: number } }),
      );
    const results = await Promise.all([attempt(), attempt()]);
    const failures = results.flatMap((r) => ('error' in r ? [r.error] : []));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ code: 'lock_timeout', exitCode: 5 });
    expect(await listBackups(target)).toHaveLength(1);
  });
});
