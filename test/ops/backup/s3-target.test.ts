import path from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Config } from '../../../src/config/resolve-config.js';
import { configDefaults } from '../../../src/config/resolve-config.js';
import { getBlob } from '../../../src/objects/blob-store.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import { networkWithTasks, queueClients } from '../../helpers/queue.js';
import { startTestServer } from '../../helpers/server.js';
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
let identity: string;
let recipient: string;
beforeAll(async () => {
  peer = await startS3Peer();
  identity = await generateX25519Identity();
  recipient = await identityToRecipient(identity);
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

  it('packs result blobs at an S3 target (encrypted) and restores them byte for byte', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('s3-packs');
    // Past the row limit, so each is a blob (packed), not bytes in its row.
    const pastRowLimit = configDefaults.inlineResultMaxBytes + 1;
    const bodies = [
      'blob one'.padEnd(pastRowLimit, '.'),
      'blob two'.padEnd(pastRowLimit, '.'),
      'L'.repeat(300 * 1024),
    ];
    const shas: string[] = [];
    for (const [i, claim] of (await compute.claim(id, { count: 3 })).entries()) {
      shas.push(
        (await compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from(bodies[i]!))).sha256,
      );
    }
    const target = openObjectStore(peer.freshUrl(), { env: { ...process.env, ...peer.env } });
    const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
    const encryption = { mode: 'recipients' as const, recipients: [recipient] };
    const { manifest } = await createBackup({ config, target, encryption });
    expect(manifest.blobCount).toBe(3);
    expect(manifest.packs?.[0]?.path).toMatch(/^packs\/age-[0-9a-f]{16}\/.*\.tar\.(gz|zst)\.age$/);
    const keys = { identities: [identity], passphrases: [] };
    expect((await verifyBackup({ target, backup: manifest.id, mode: 'full', keys })).ok).toBe(true);
    const objectsUrl = `file:${path.join(dir, `objects-s3-${backend}`)}`;
    const restored = await restoreBackup({
      target,
      backup: manifest.id,
      config: { ...configFor(await freshDatabaseUrl(backend, dir), dir), objectsUrl },
      keys,
    });
    expect(restored.blobs).toEqual({ copied: 3, present: 0 });
    const objects = openObjectStore(objectsUrl);
    for (const [i, sha] of shas.entries()) {
      expect(Buffer.concat(await (await getBlob(objects, sha)).toArray()).toString()).toBe(bodies[i]);
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
