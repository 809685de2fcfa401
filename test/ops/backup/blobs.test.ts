import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import type { Config } from '../../../src/config/resolve-config.js';
import { blobKey, getBlob, hasBlob } from '../../../src/objects/blob-store.js';
import type { ObjectStore } from '../../../src/objects/object-store.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { restoreBlobs } from '../../../src/ops/backup/backup-blobs.js';
import { listBackups, resolveBackupId } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { pruneBackups } from '../../../src/ops/backup/prune-backups.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import { configDefaults } from '../../../src/config/resolve-config.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir, testConfig } from '../../helpers/backends.js';
import { networkWithTasks, queueClients } from '../../helpers/queue.js';
import { startTestServer } from '../../helpers/server.js';

const maxInlineResultBytes = configDefaults.inlineResultMaxBytes;

const noKeys = { identities: [], passphrases: [] };
/** Result text padded past the inline limit, so its bytes are stored (and backed up) as a blob. */
const asBlob = (text: string) => text.padEnd(maxInlineResultBytes + 1, '.');
const text = async (stream: Readable) => Buffer.concat(await stream.toArray()).toString('utf8');

/** Every file under `dir`, relative to it, with `/` separators. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

/** A server whose network has `results` completed tasks, each with its own result blob (`asBlob`). */
async function platformWithResults(backend: 'sqlite' | 'postgres', dir: string, results: string[]) {
  const server = await startTestServer(backend, dir);
  const { user, compute } = await queueClients(server);
  await networkWithTasks(user, { count: results.length });
  const { id } = await compute.register('blob-test');
  const claims = await compute.claim(id, { count: results.length });
  const shas: string[] = [];
  for (const [i, claim] of claims.entries()) {
    shas.push(
      (await compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from(asBlob(results[i]!))))
        .sha256,
    );
  }
  const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
  return { server, user, config, shas, objects: openObjectStore(config.objectsUrl) };
}

describeEachBackend('result blobs in backups', (backend) => {
  const dir = tempDir();

  it('copies each referenced blob to the target once and restores it into an empty object store', async () => {
    const { config, shas, objects } = await platformWithResults(backend, dir, [
      'first result',
      'second result',
    ]);
    const targetDir = path.join(dir, `target-${backend}-copy`);
    const target = openObjectStore(`file:${targetDir}`);

    const first = await createBackup({ config, target, encryption: { mode: 'none' } });
    const second = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect(first.manifest.blobs?.map((b) => b.sha256).sort()).toEqual([...shas].sort());
    expect(second.manifest.blobs).toEqual(first.manifest.blobs);
    // Stored once, under the same content address as in the object store.
    const blobFiles = filesUnder(targetDir).filter((f) => f.startsWith('blobs/'));
    expect(blobFiles.sort()).toEqual(shas.map((sha) => blobKey(sha)).sort());

    // A new installation: an empty database and an empty object store.
    const restoredObjects = path.join(dir, `objects-restored-${backend}`);
    const restoredConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${restoredObjects}`,
    };
    const restored = await restoreBackup({ target, backup: 'latest', config: restoredConfig, keys: noKeys });
    expect(restored.blobs).toEqual({ copied: 2, present: 0 });
    const into = openObjectStore(restoredConfig.objectsUrl);
    expect(await text(await getBlob(into, shas[0]!))).toBe(asBlob('first result'));
    expect(await text(await getBlob(into, shas[1]!))).toBe(asBlob('second result'));
    // Restoring again over the same object store copies nothing.
    const store = await openStore(restoredConfig);
    await store.close();
    const again = await restoreBackup({
      target,
      backup: first.manifest.id,
      config: restoredConfig,
      keys: noKeys,
      force: true,
      safetyBackupEncryption: { mode: 'none' },
    });
    expect(again.blobs).toEqual({ copied: 0, present: 2 });
    expect(await hasBlob(objects, shas[0]!)).toBe(true);
  });

  it('restores small blobs in batches and a large one streamed, byte for byte', async () => {
    const large = 'L'.repeat(300 * 1024);
    const contents = [...Array.from({ length: 12 }, (_, i) => `small result ${i}`), large];
    const { config, shas } = await platformWithResults(backend, dir, contents);
    const target = openObjectStore(`file:${path.join(dir, `target-${backend}-batches`)}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect(manifest.blobs?.length).toBe(contents.length);
    const restoredConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `objects-batches-${backend}`)}`,
    };
    const restored = await restoreBackup({
      target,
      backup: manifest.id,
      config: restoredConfig,
      keys: noKeys,
    });
    expect(restored.blobs).toEqual({ copied: contents.length, present: 0 });
    const into = openObjectStore(restoredConfig.objectsUrl);
    for (const [i, sha] of shas.entries())
      expect(await text(await getBlob(into, sha))).toBe(asBlob(contents[i]!));
  });

  it('starts no further blob copy once a failed restore aborts it', async () => {
    const { config } = await platformWithResults(backend, dir, ['kept back one', 'kept back two']);
    const target = openObjectStore(`file:${path.join(dir, `target-${backend}-abort`)}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    const intoDir = path.join(dir, `objects-abort-${backend}`);
    const aborted = new AbortController();
    aborted.abort();
    await expect(
      restoreBlobs({
        target,
        manifest,
        objects: openObjectStore(`file:${intoDir}`),
        decrypter: undefined,
        signal: aborted.signal,
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(intoDir) ? filesUnder(intoDir) : []).toEqual([]);
  });

  it('finds the backups at a target without walking its shared blobs', async () => {
    const { config } = await platformWithResults(backend, dir, ['one', 'two', 'three']);
    const target = openObjectStore(`file:${path.join(dir, `target-${backend}-scan`)}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    const listed: string[] = [];
    const watched: ObjectStore = {
      url: target.url,
      put: (key, body, options) => target.put(key, body, options),
      putIfAbsent: (key, body) => target.putIfAbsent(key, body),
      get: (key) => target.get(key),
      head: (key) => target.head(key),
      delete: (key) => target.delete(key),
      move: (from, to) => target.move(from, to),
      async *list(prefix) {
        for await (const object of target.list(prefix)) {
          listed.push(object.key);
          yield object;
        }
      },
    };
    expect(await resolveBackupId(watched, 'latest')).toBe(manifest.id);
    expect((await listBackups(watched)).map((entry) => entry.id)).toEqual([manifest.id]);
    expect(listed.some((key) => key.startsWith(`${manifest.id}/`))).toBe(true);
    expect(listed.filter((key) => key.startsWith('blobs/'))).toEqual([]);
  });

  it('names a damaged blob in verify (quick and full) and refuses to restore it', async () => {
    const { config, shas } = await platformWithResults(backend, dir, ['intact bytes']);
    const targetDir = path.join(dir, `target-${backend}-damaged`);
    const target = openObjectStore(`file:${targetDir}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect((await verifyBackup({ target, backup: manifest.id, mode: 'full', keys: noKeys })).ok).toBe(true);

    const file = path.join(targetDir, blobKey(shas[0]!));
    const bytes = readFileSync(file);
    bytes[0] = bytes[0]! ^ 0x01;
    writeFileSync(file, bytes);
    for (const mode of ['quick', 'full'] as const) {
      const record = await verifyBackup({ target, backup: manifest.id, mode, keys: noKeys });
      expect(record.ok, mode).toBe(false);
      expect(record.problems.map((p) => p.file)).toContain(blobKey(shas[0]!));
    }
    const emptyConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `objects-empty-${backend}`)}`,
    };
    await expect(
      restoreBackup({ target, backup: manifest.id, config: emptyConfig, keys: noKeys }),
    ).rejects.toMatchObject({ code: 'backup_corrupt', message: expect.stringContaining(blobKey(shas[0]!)) });
    // Nothing was restored: the database is still empty.
    const store = await openStore({ ...emptyConfig }).catch(() => undefined);
    if (store) {
      const tables = await store.backend.tableExists(store.db, 'results');
      expect(tables).toBe(false);
      await store.close();
    }
  });

  it('shares blobs between passphrase backups, keeps them encrypted, and prune removes only unreferenced ones', async () => {
    const canary = 'CANARY-blob-7d3e91';
    const { config, shas } = await platformWithResults(backend, dir, [`the ${canary} result`]);
    const targetDir = path.join(dir, `target-${backend}-encrypted`);
    const target = openObjectStore(`file:${targetDir}`);
    const encryption = { mode: 'passphrase' as const, passphrase: 'correct horse battery staple' };
    const first = await createBackup({ config, target, encryption });
    const second = await createBackup({ config, target, encryption });
    expect(second.manifest.blobs).toEqual(first.manifest.blobs);
    const blobFiles = filesUnder(targetDir).filter((f) => f.startsWith('blobs/'));
    expect(blobFiles).toHaveLength(1);
    expect(blobFiles[0]).toMatch(
      new RegExp(`^blobs/age-[0-9a-f]{16}/sha256/${shas[0]!.slice(0, 2)}/${shas[0]}\\.age$`),
    );
    for (const file of filesUnder(targetDir)) {
      expect(readFileSync(path.join(targetDir, file)).includes(canary), file).toBe(false);
    }

    // A stray blob nobody references (a backup that died after copying it) goes; referenced ones stay.
    await target.put('blobs/sha256/ff/' + 'f'.repeat(64), Buffer.from('orphan'));
    const dryRun = await pruneBackups({ target, policy: { keepLast: 1 }, dryRun: true });
    expect(dryRun.blobs).toEqual(['blobs/sha256/ff/' + 'f'.repeat(64)]);
    expect(filesUnder(targetDir).filter((f) => f.startsWith('blobs/'))).toHaveLength(2);
    const pruned = await pruneBackups({ target, policy: { keepLast: 1 } });
    expect(pruned.remove).toEqual([first.manifest.id]);
    expect(filesUnder(targetDir).filter((f) => f.startsWith('blobs/'))).toEqual(blobFiles);

    const restoredConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `objects-decrypted-${backend}`)}`,
    };
    const restored = await restoreBackup({
      target,
      backup: 'latest',
      config: restoredConfig,
      keys: { identities: [], passphrases: [encryption.passphrase] },
    });
    expect(restored.blobs.copied).toBe(1);
    expect(await text(await getBlob(openObjectStore(restoredConfig.objectsUrl), shas[0]!))).toBe(
      asBlob(`the ${canary} result`),
    );
  });
});
