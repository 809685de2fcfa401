import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import type { Config } from '../../../src/config/resolve-config.js';
import { getBlob, hasBlob } from '../../../src/objects/blob-store.js';
import type { ObjectStore } from '../../../src/objects/object-store.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { restoreBlobs } from '../../../src/ops/backup/backup-blobs.js';
import { readPackIndex } from '../../../src/ops/backup/blob-packs.js';
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

  it('packs each referenced blob once at the target and restores it into an empty object store', async () => {
    const { config, shas, objects } = await platformWithResults(backend, dir, [
      'first result',
      'second result',
    ]);
    const targetDir = path.join(dir, `target-${backend}-copy`);
    const target = openObjectStore(`file:${targetDir}`);

    const first = await createBackup({ config, target, encryption: { mode: 'none' } });
    const second = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect(first.manifest.formatVersion).toBe(2);
    expect(first.manifest.blobCount).toBe(2);
    expect(first.manifest.packs).toHaveLength(1);
    const pack = first.manifest.packs![0]!;
    expect(pack.path).toMatch(new RegExp(`^packs/${first.manifest.id}\\.0\\.tar\\.(gz|zst)$`));
    expect(pack.blobCount).toBe(2);
    const index = await readPackIndex(target, first.manifest, pack);
    expect(index.map((e) => e.sha256).sort()).toEqual([...shas].sort());
    // The second backup lists the first one's pack instead of packing the same blobs again.
    expect(second.manifest.packs).toEqual(first.manifest.packs);
    expect(second.manifest.blobCount).toBe(2);
    expect(filesUnder(targetDir).filter((f) => f.startsWith('packs/'))).toEqual(
      [pack.path, pack.index.path].sort(),
    );
    expect(filesUnder(targetDir).filter((f) => f.startsWith('blobs/'))).toEqual([]);

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

  it('packs only the blobs earlier packs lack, and restores a backup from its own and earlier packs', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('blob-dedup');
    const claims = await compute.claim(id, { count: 3 });
    const submit = async (i: number) =>
      (
        await compute.submitResult(
          claims[i]!.task,
          claims[i]!.leaseToken,
          'ok',
          Buffer.from(asBlob(`result ${i}`)),
        )
      ).sha256;
    const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
    const target = openObjectStore(`file:${path.join(dir, `target-${backend}-dedup`)}`);
    const shas = [await submit(0), await submit(1)];
    const first = await createBackup({ config, target, encryption: { mode: 'none' } });
    shas.push(await submit(2));
    const second = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect(first.manifest.packs).toHaveLength(1);
    expect(second.manifest.blobCount).toBe(3);
    expect(second.manifest.packs).toHaveLength(2);
    expect(second.manifest.packs).toContainEqual(first.manifest.packs![0]);
    const added = second.manifest.packs!.find((p) => p.path !== first.manifest.packs![0]!.path)!;
    expect(added.path).toContain(second.manifest.id);
    expect((await readPackIndex(target, second.manifest, added)).map((e) => e.sha256)).toEqual([shas[2]]);

    const restoredConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `objects-dedup-${backend}`)}`,
    };
    // By id: two backups taken within one second need not sort in the order they were taken.
    const restored = await restoreBackup({
      target,
      backup: second.manifest.id,
      config: restoredConfig,
      keys: noKeys,
    });
    expect(restored.blobs).toEqual({ copied: 3, present: 0 });
    const into = openObjectStore(restoredConfig.objectsUrl);
    for (const [i, sha] of shas.entries())
      expect(await text(await getBlob(into, sha))).toBe(asBlob(`result ${i}`));
    expect((await verifyBackup({ target, backup: second.manifest.id, mode: 'full', keys: noKeys })).ok).toBe(
      true,
    );
  });

  it('restores small blobs in batches and a large one streamed, byte for byte, from several packs', async () => {
    const large = 'L'.repeat(300 * 1024);
    const contents = [...Array.from({ length: 12 }, (_, i) => `small result ${i}`), large];
    const { config, shas } = await platformWithResults(backend, dir, contents);
    const target = openObjectStore(`file:${path.join(dir, `target-${backend}-batches`)}`);
    // A small pack size spreads the blobs over several packs.
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' }, packBytes: 64 });
    expect(manifest.blobCount).toBe(contents.length);
    expect(manifest.packs!.length).toBeGreaterThan(2);
    expect(manifest.packs!.reduce((n, p) => n + p.blobCount, 0)).toBe(contents.length);
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

  it('finds the backups at a target without walking its shared packs', async () => {
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
    expect(listed.filter((key) => key.startsWith('blobs/') || key.startsWith('packs/'))).toEqual([]);
  });

  it('names a damaged pack in verify (quick and full) and refuses to restore it', async () => {
    const { config } = await platformWithResults(backend, dir, ['intact bytes']);
    const targetDir = path.join(dir, `target-${backend}-damaged`);
    const target = openObjectStore(`file:${targetDir}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect((await verifyBackup({ target, backup: manifest.id, mode: 'full', keys: noKeys })).ok).toBe(true);

    const packPath = manifest.packs![0]!.path;
    const file = path.join(targetDir, packPath);
    const bytes = readFileSync(file);
    // A byte in the middle: inside the compressed blob data, not in the gzip header.
    bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0x01;
    writeFileSync(file, bytes);
    for (const mode of ['quick', 'full'] as const) {
      const record = await verifyBackup({ target, backup: manifest.id, mode, keys: noKeys });
      expect(record.ok, mode).toBe(false);
      expect(record.problems.map((p) => p.file)).toContain(packPath);
    }
    const emptyConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `objects-empty-${backend}`)}`,
    };
    await expect(
      restoreBackup({ target, backup: manifest.id, config: emptyConfig, keys: noKeys }),
    ).rejects.toMatchObject({ code: 'backup_corrupt', message: expect.stringContaining(packPath) });
    // Nothing was restored: the database is still empty.
    const store = await openStore({ ...emptyConfig }).catch(() => undefined);
    if (store) {
      const tables = await store.backend.tableExists(store.db, 'results');
      expect(tables).toBe(false);
      await store.close();
    }
  });

  it('shares packs between passphrase backups, keeps them encrypted, and prune removes only unreferenced ones', async () => {
    const canary = 'CANARY-blob-7d3e91';
    const { config, shas } = await platformWithResults(backend, dir, [`the ${canary} result`]);
    const targetDir = path.join(dir, `target-${backend}-encrypted`);
    const target = openObjectStore(`file:${targetDir}`);
    const encryption = { mode: 'passphrase' as const, passphrase: 'correct horse battery staple' };
    const first = await createBackup({ config, target, encryption });
    const second = await createBackup({ config, target, encryption });
    expect(second.manifest.packs).toEqual(first.manifest.packs);
    const blobFiles = filesUnder(targetDir)
      .filter((f) => f.startsWith('packs/'))
      .sort();
    expect(blobFiles).toHaveLength(2);
    expect(blobFiles[1]).toMatch(
      new RegExp(`^packs/age-[0-9a-f]{16}/${first.manifest.id}\\.0\\.tar\\.(gz|zst)\\.age$`),
    );
    // The index lists digests and sizes only, as the manifest of format 1 did.
    expect((await readPackIndex(target, first.manifest, first.manifest.packs![0]!))[0]?.sha256).toBe(shas[0]);
    for (const file of filesUnder(targetDir)) {
      expect(readFileSync(path.join(targetDir, file)).includes(canary), file).toBe(false);
    }

    // A stray pack nobody lists (a backup that died after writing it) goes; listed ones stay, also
    // when the backup that wrote them is pruned, as long as a kept backup lists them.
    const stray = `packs/age-0000000000000000/20261101T000000Z-abcdef.0.tar.gz.age`;
    await target.put(stray, Buffer.from('orphan'));
    const dryRun = await pruneBackups({ target, policy: { keepLast: 1 }, dryRun: true });
    expect(dryRun.blobs).toEqual([stray]);
    expect(filesUnder(targetDir).filter((f) => f.startsWith('packs/'))).toHaveLength(3);
    const pruned = await pruneBackups({ target, policy: { keepLast: 1 } });
    expect(pruned.remove).toEqual([first.manifest.id]);
    expect(
      filesUnder(targetDir)
        .filter((f) => f.startsWith('packs/'))
        .sort(),
    ).toEqual(blobFiles);

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
