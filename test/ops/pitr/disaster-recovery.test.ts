import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserClient } from '../../../src/client/user-client.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { SqliteReplicator } from '../../../src/ops/pitr/sqlite-replicator.js';
import { parseDatabaseUrl } from '../../../src/domain/database-url.js';
import { runCli } from '../../helpers/cli.js';
import { freePort } from '../../helpers/postgres-cluster.js';
import { networkWithTasks, queueClients } from '../../helpers/queue.js';
import { startServeProcess } from '../../helpers/serve-process.js';
import { startTestServer } from '../../helpers/server.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-dr-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('disaster recovery from the backup target alone', () => {
  it('rebuilds the database and every result blob on an empty host, and serve hands out every result', async () => {
    const site = tempDir();
    const server = await startTestServer('sqlite', site);
    const file = (parseDatabaseUrl(server.databaseUrl!) as { file: string }).file;
    const targetDir = path.join(tempDir(), 'offsite');
    const target = openObjectStore(`file:${targetDir}`);
    const replicator = new SqliteReplicator({
      databaseFile: file,
      target,
      encryption: { mode: 'none' },
      objects: openObjectStore(server.config.objectsUrl),
      intervalMs: 50,
    });
    await replicator.start();
    const { user, compute, userCredentials } = await queueClients(server);
    const count = 12;
    await networkWithTasks(user, { count });
    const { id } = await compute.register('dr-test');
    const expected = new Map<string, string>();
    // Large results are blobs in the object store; small ones live in their row.
    const blobShas: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const [claim] = await compute.claim(id, { count: 1 });
      const body = Buffer.from(`result ${i} ${'x'.repeat(i % 2 === 0 ? 100_000 + i : i * 100)}`);
      await compute.submitResult(claim!.task, claim!.leaseToken, 'ok', body);
      const sha = createHash('sha256').update(body).digest('hex');
      expected.set(claim!.task, sha);
      if (i % 2 === 0) blobShas.push(sha);
    }
    await replicator.flush();
    // Blobs of a local object store travel beside the replica, about once a second.
    const deadline = Date.now() + 30_000;
    for (const sha of blobShas) {
      const key = `pitr/blobs/sha256/${sha.slice(0, 2)}/${sha}`;
      while (!(await target.head(key))) {
        if (Date.now() > deadline) throw new Error(`blob ${sha} never reached the target`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    const pointInTime = new Date();
    await replicator.stop();
    // The site is lost: database, objects, everything but the off-site target.
    rmSync(site, { recursive: true, force: true });

    const fresh = tempDir();
    const env = { ATHANOR_DATA_DIR: path.join(fresh, 'data'), ATHANOR_BACKUP_TARGET: `file:${targetDir}` };
    const restore = await runCli(['backup', 'restore', '--to-time', pointInTime.toISOString(), '--json'], {
      env,
      cwd: fresh,
    });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ blobs: { copied: blobShas.length, missing: [] } });
    expect(existsSync(path.join(fresh, 'data', 'athanor.db'))).toBe(true);

    const serve = await startServeProcess(await freePort(), env);
    try {
      const restored = new UserClient({ ...userCredentials, url: serve.url });
      for (const [task, sha] of expected) {
        const [result] = await restored.taskResults(task);
        const bytes = Buffer.concat(await (await restored.downloadResult(result!.id)).toArray());
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha);
      }
    } finally {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
  }, 120_000);
});
