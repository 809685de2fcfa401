import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import type { Config } from '../../src/config/resolve-config.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import { readPackIndex } from '../../src/ops/backup/blob-packs.js';
import { createBackup } from '../../src/ops/backup/create-backup.js';
import type { BackupManifest } from '../../src/ops/backup/manifest.js';
import { restoreBackup } from '../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../src/ops/backup/verify-backup.js';
import { configDefaults } from '../../src/config/resolve-config.js';
import { openStore } from '../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir, testConfig } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const maxInlineResultBytes = configDefaults.inlineResultMaxBytes;

const bytesOf = async (stream: Readable) => Buffer.concat(await stream.toArray());
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Every file under the object store's `blobs/` folder, relative to the store. */
function blobFiles(objectsUrl: string): string[] {
  const root = objectsUrl.slice('file:'.length);
  const dir = path.join(root, 'blobs');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

/** Bytes of every value, so a body that is not valid text still comes back exactly. */
function binaryBody(sizeBytes: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: sizeBytes }, (_, i) => (i * 31 + seed) % 256));
}

/** The blobs a backup holds in its packs, sorted. */
async function packedBlobs(target: ObjectStore, manifest: BackupManifest): Promise<string[]> {
  const held: string[] = [];
  for (const pack of manifest.packs ?? [])
    held.push(...(await readPackIndex(target, manifest, pack)).map((e) => e.sha256));
  return held.sort();
}

describeEachBackend('small results stored in their row', (backend) => {
  it('a small result writes no blob yet downloads byte for byte; a larger one is still a blob', async () => {
    // A directory (and object store) of its own: the blobs/ folder holds only this test's blobs.
    const dir = tempDir();
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('inline');
    const claims = await compute.claim(id, { count: 2 });
    const small = binaryBody(maxInlineResultBytes, 7);
    const large = binaryBody(maxInlineResultBytes + 1, 9);
    const byTask = new Map(claims.map((c) => [c.task, c]));
    const smallClaim = byTask.get(tasks[0]!)!;
    const largeClaim = byTask.get(tasks[1]!)!;

    const answer = await compute.submitResult(smallClaim.task, smallClaim.leaseToken, 'ok', small);
    expect(answer).toMatchObject({ status: 'complete', sha256: sha256(small) });
    expect(blobFiles(server.config.objectsUrl)).toEqual([]);
    const [stored] = await user.taskResults(smallClaim.task);
    expect(stored).toMatchObject({ sha256: sha256(small), sizeBytes: small.length });
    expect((await bytesOf(await user.downloadResult(stored!.id))).equals(small)).toBe(true);
    expect((await bytesOf(await compute.downloadResult(stored!.id))).equals(small)).toBe(true);
    // Sent again after a lost answer: the same stored result, still nothing in the object store.
    const repeat = await compute.submitResult(smallClaim.task, smallClaim.leaseToken, 'ok', small);
    expect(repeat).toEqual(answer);
    expect(blobFiles(server.config.objectsUrl)).toEqual([]);

    await compute.submitResult(largeClaim.task, largeClaim.leaseToken, 'ok', large);
    const files = blobFiles(server.config.objectsUrl);
    expect(files).toHaveLength(1);
    expect(files[0]!.endsWith(sha256(large))).toBe(true);
    const [largeResult] = await user.taskResults(largeClaim.task);
    expect((await bytesOf(await user.downloadResult(largeResult!.id))).equals(large)).toBe(true);
  });

  it('a batch of small results writes no blob; a stale lease records nothing, in a batch or alone', async () => {
    const dir = tempDir();
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 4 });
    const { id } = await compute.register('inline-batch');
    const claims = await compute.claim(id, { count: 4 });
    const [a, b, c, d] = claims;
    // c's lease goes stale: released, then claimed again under a new token.
    await compute.release(c!.task, c!.leaseToken);
    const [again] = await compute.claim(id, { count: 1 });
    expect(again!.task).toBe(c!.task);
    const bodies = claims.map((_, i) => binaryBody(1000 + i, i));
    const mid = binaryBody(200 * 1024, 5);

    const answer = await compute.exchange(id, {
      results: [
        { task: a!.task, leaseToken: a!.leaseToken, outcome: 'ok', body: bodies[0]! },
        { task: b!.task, leaseToken: b!.leaseToken, outcome: 'ok', body: bodies[1]! },
        { task: c!.task, leaseToken: c!.leaseToken, outcome: 'ok', body: bodies[2]! },
        { task: d!.task, leaseToken: d!.leaseToken, outcome: 'ok', body: mid },
      ],
    });
    expect(answer.results.map((r) => r.result?.status ?? r.error?.code)).toEqual([
      'complete',
      'complete',
      'stale_lease',
      'complete',
    ]);
    // Only the result too large for its row is a blob.
    expect(blobFiles(server.config.objectsUrl)).toEqual([
      `blobs/sha256/${sha256(mid).slice(0, 2)}/${sha256(mid)}`,
    ]);
    for (const [claim, body] of [
      [a!, bodies[0]!],
      [b!, bodies[1]!],
      [d!, mid],
    ] as const) {
      const [result] = await user.taskResults(claim.task);
      expect((await bytesOf(await user.downloadResult(result!.id))).equals(body)).toBe(true);
    }
    // The stale token recorded nothing, alone either: the task still runs under its new lease.
    await expect(compute.submitResult(c!.task, c!.leaseToken, 'ok', bodies[2]!)).rejects.toMatchObject({
      code: 'stale_lease',
    });
    expect(await user.taskResults(c!.task)).toEqual([]);
    expect((await user.getTask(c!.task)).status).toBe('running');
    expect(blobFiles(server.config.objectsUrl)).toHaveLength(1);
    // The live lease's result lands.
    await compute.submitResult(again!.task, again!.leaseToken, 'ok', bodies[2]!);
    const [landed] = await user.taskResults(c!.task);
    expect(landed!.attempt).toBe(again!.attempt);
    expect((await bytesOf(await user.downloadResult(landed!.id))).equals(bodies[2]!)).toBe(true);
  });

  it('a backup carries small results in its rows: restored byte for byte into an empty installation', async () => {
    const dir = tempDir();
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('inline-backup');
    const bodies = new Map<string, Buffer>();
    for (const [i, claim] of (await compute.claim(id, { count: 3 })).entries()) {
      const body = i === 2 ? binaryBody(maxInlineResultBytes + 100, i) : binaryBody(100 + i * 5000, i);
      bodies.set(claim.task, body);
      await compute.submitResult(claim.task, claim.leaseToken, 'ok', body);
    }
    const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
    const target = openObjectStore(`file:${path.join(dir, `inline-target-${backend}`)}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    // Only the large result's blob is copied; the small ones travel in the results table.
    const large = [...bodies.values()].find((b) => b.length > maxInlineResultBytes)!;
    expect(await packedBlobs(target, manifest)).toEqual([sha256(large)]);
    for (const mode of ['quick', 'full'] as const) {
      const verified = await verifyBackup({
        target,
        backup: manifest.id,
        mode,
        keys: { identities: [], passphrases: [] },
      });
      expect(verified.ok, `${mode}: ${JSON.stringify(verified)}`).toBe(true);
    }

    const restoredConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `inline-objects-restored-${backend}`)}`,
    };
    const restored = await restoreBackup({
      target,
      backup: manifest.id,
      config: restoredConfig,
      keys: { identities: [], passphrases: [] },
    });
    expect(restored.blobs).toEqual({ copied: 1, present: 0 });
    expect(blobFiles(restoredConfig.objectsUrl)).toHaveLength(1);
    const restoredStore = await openStore(restoredConfig);
    // Registered before the server's own: closed after it.
    afterAll(() => restoredStore.close());
    const again = await startTestServer(backend, dir, {
      store: restoredStore,
      objectsUrl: restoredConfig.objectsUrl,
    });
    const rows = await again.store.db
      .selectFrom('results')
      .select(['task_id', 'id', 'blob_sha256', 'size_bytes'])
      .execute();
    expect(rows).toHaveLength(3);
    const { user: restoredUser } = await queueClients(again);
    for (const row of rows) {
      const body = bodies.get(row.task_id)!;
      expect(row).toMatchObject({ blob_sha256: sha256(body), size_bytes: body.length });
      expect((await bytesOf(await restoredUser.downloadResult(row.id))).equals(body)).toBe(true);
    }
  });
});

describeEachBackend('a backup from before results were stored in their rows', (backend) => {
  it('with a blob for every result, as older releases stored them, restores: every result downloads from its blob', async () => {
    const dir = tempDir();
    // Every result a blob, as the previous release stored them.
    const server = await startTestServer(backend, dir, { inlineResultMaxBytes: 0 });
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 4 });
    const { id } = await compute.register('old-release');
    const bodies = new Map<string, Buffer>();
    for (const [i, claim] of (await compute.claim(id, { count: 4 })).entries()) {
      const body = binaryBody(10 + i * 1000, i);
      bodies.set(claim.task, body);
      await compute.submitResult(claim.task, claim.leaseToken, 'ok', body);
    }
    expect(blobFiles(server.config.objectsUrl)).toHaveLength(4);
    // A backup at an older schema (migration 8, no body column) restoring and migrating forward is
    // test/ops/backup/format-1.test.ts, on a fixture the previous release wrote.
    const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
    const target = openObjectStore(`file:${path.join(dir, `old-target-${backend}`)}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect(manifest).toMatchObject({ formatVersion: 2 });
    expect(await packedBlobs(target, manifest)).toEqual([...bodies.values()].map(sha256).sort());

    const restoredConfig = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `old-objects-restored-${backend}`)}`,
    };
    const restored = await restoreBackup({
      target,
      backup: manifest.id,
      config: restoredConfig,
      keys: { identities: [], passphrases: [] },
    });
    expect(restored).toMatchObject({ appliedMigrations: [] });
    expect(restored.blobs).toEqual({ copied: 4, present: 0 });
    const restoredStore = await openStore(restoredConfig);
    afterAll(() => restoredStore.close());
    const again = await startTestServer(backend, dir, {
      store: restoredStore,
      objectsUrl: restoredConfig.objectsUrl,
    });
    const rows = await again.store.db.selectFrom('results').select(['id', 'task_id', 'body']).execute();
    expect(rows).toHaveLength(4);
    const { user: restoredUser } = await queueClients(again);
    for (const row of rows) {
      expect(row.body).toBeNull();
      const body = bodies.get(row.task_id)!;
      expect((await bytesOf(await restoredUser.downloadResult(row.id))).equals(body)).toBe(true);
    }
  });
});
