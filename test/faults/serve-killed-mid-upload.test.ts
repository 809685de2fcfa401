import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { UserClient } from '../../src/client/user-client.js';
import { blobKey } from '../../src/objects/blob-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { openStore } from '../../src/store/open-store.js';
import { tempDir } from '../helpers/backends.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { networkWithTasks } from '../helpers/queue.js';
import { probe, startAthanor, prepareDatabase } from './processes.js';
import { until } from '../helpers/until.js';

const taskCount = 12;

/** Names in a directory, or none when it does not exist (yet). */
async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

it(
  'serve killed with SIGKILL mid result upload: after its restart every task has exactly one result and its blob',
  { timeout: 150_000 },
  async () => {
    const dir = tempDir();
    const databaseUrl = `sqlite:${path.join(dir, 'athanor.db')}`;
    const objectsDir = path.join(dir, 'objects');
    await prepareDatabase(databaseUrl);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const serveEnv = {
      ATHANOR_DATABASE_URL: databaseUrl,
      ATHANOR_OBJECTS_URL: `file:${objectsDir}`,
      ATHANOR_DATA_DIR: dir,
    };
    const serve = () => startAthanor(['serve', '--port', String(port)], serveEnv);
    const ready = () =>
      until('the server to be ready', async () => (await probe(`${url}/readyz`)).status === 200, 30_000);
    let server = serve();
    const processes = [server];
    try {
      await ready();
      const user = new UserClient({ url, identifier: 'alice', key: 'alice-key-0123456789' });
      // Results of 600 kB are streamed to a temporary file on the server before they are published.
      const { network, tasks } = await networkWithTasks(user, {
        count: taskCount,
        protocol: 'echo',
        inputs: (i) => ({ i, data: 'x'.repeat(600_000) }),
      });
      const compute = startAthanor(['compute', 'run', '-c', '2'], {
        ATHANOR_URL: url,
        ATHANOR_COMPUTE_ID: 'hpc',
        ATHANOR_COMPUTE_KEY: 'hpc-key-0123456789',
      });
      processes.push(compute);

      // Kill the server while it writes a result: the moment a partial write appears. If the write
      // finished between seeing it and the kill, nothing partial is left: restart and try again.
      const partialDir = path.join(objectsDir, '.athanor-tmp');
      let leftOver: string[] = [];
      for (let round = 0; round < 5 && leftOver.length === 0; round++) {
        const deadline = Date.now() + 30_000;
        while ((await entries(partialDir)).length === 0) {
          if (Date.now() > deadline) throw new Error(`no result upload began: ${compute.log()}`);
          await new Promise((resolve) => setImmediate(resolve));
        }
        server.child.kill('SIGKILL');
        await server.exited;
        leftOver = await entries(partialDir);
        server = serve();
        processes.push(server);
        await ready();
      }
      expect(leftOver.length, 'a result upload was cut half-way').toBeGreaterThan(0);

      const complete = async () => (await user.networkStatus(network)).complete ?? 0;
      await until('every task to complete', async () => (await complete()) === taskCount, 90_000).catch(
        (error: unknown) => {
          throw new Error(
            `${(error as Error).message}; logs:\n${processes.map((p) => p.log()).join('\n---\n')}`,
          );
        },
      );
      expect(compute.alive(), compute.log()).toBe(true);

      const check = await openStore({ databaseUrl, busyTimeoutMs: 1000 });
      const objects = openObjectStore(`file:${objectsDir}`);
      try {
        const results = await check.db
          .selectFrom('results')
          .select(['task_id', 'outcome', 'blob_sha256', 'size_bytes'])
          .execute();
        // Exactly one result per task, each ok.
        expect(results.map((r) => r.task_id).sort()).toEqual([...tasks].sort());
        expect(results.filter((r) => r.outcome !== 'ok')).toEqual([]);
        const digest = async (key: string) => {
          const hash = createHash('sha256');
          for await (const chunk of await objects.get(key)) hash.update(chunk as Buffer);
          return hash.digest('hex');
        };
        for (const r of results) {
          expect(await objects.head(blobKey(r.blob_sha256!))).toMatchObject({ sizeBytes: r.size_bytes });
        }
        // Every blob anyone can read holds exactly the bytes its name promises: the cut write
        // stayed a partial file and was never published.
        const blobs: string[] = [];
        for await (const object of objects.list('blobs/')) blobs.push(object.key);
        expect(blobs.length).toBe(taskCount);
        for (const key of blobs) expect(key.endsWith(await digest(key)), key).toBe(true);
      } finally {
        await check.close();
      }
      for (const p of [compute, server]) p.child.kill('SIGTERM');
      expect(await Promise.all([compute.exited, server.exited])).toEqual([0, 0]);
    } finally {
      for (const p of processes) if (p.alive()) p.child.kill('SIGKILL');
    }
  },
);
