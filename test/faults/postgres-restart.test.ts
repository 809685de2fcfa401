import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { UserClient } from '../../src/client/user-client.js';
import { blobKey } from '../../src/objects/blob-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { openStore } from '../../src/store/open-store.js';
import { tempDir, postgresAdminUrl } from '../helpers/backends.js';
import type { PostgresCluster } from '../helpers/postgres-cluster.js';
import { freePort, startPostgresCluster } from '../helpers/postgres-cluster.js';
import { networkWithTasks } from '../helpers/queue.js';
import { acceptableStatus, probe, startAthanor, prepareDatabase } from './processes.js';
import { until } from '../helpers/until.js';

const taskCount = 120;

// Its own cluster: restarting the suite's shared one would break every other PostgreSQL test.
it.runIf(postgresAdminUrl() !== '')(
  'a PostgreSQL restart under a running drain costs only 503s: no process exits, no task is lost or run twice',
  { timeout: 180_000 },
  async () => {
    const dir = tempDir();
    const started = await startPostgresCluster();
    if ('unavailable' in started) throw new Error(started.unavailable);
    const cluster: PostgresCluster = started;
    const processes: ReturnType<typeof startAthanor>[] = [];
    try {
      const databaseUrl = cluster.url;
      const objectsUrl = `file:${dir}/objects`;
      await prepareDatabase(databaseUrl);

      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const env = {
        ATHANOR_DATABASE_URL: databaseUrl,
        ATHANOR_OBJECTS_URL: objectsUrl,
        ATHANOR_DATA_DIR: dir,
      };
      const server = startAthanor(['serve', '--port', String(port)], {
        ...env,
        ATHANOR_SWEEP_INTERVAL_MS: '500',
      });
      processes.push(server);
      await until(
        'the server to be ready',
        async () => (await probe(`${url}/readyz`)).status === 200,
        30_000,
      );

      const user = new UserClient({ url, identifier: 'alice', key: 'alice-key-0123456789' });
      const { network, tasks } = await networkWithTasks(user, {
        count: taskCount,
        protocol: 'sleep',
        inputs: (i) => ({ seconds: 0.2, i }),
      });
      const computeEnv = {
        ATHANOR_URL: url,
        ATHANOR_COMPUTE_ID: 'hpc',
        ATHANOR_COMPUTE_KEY: 'hpc-key-0123456789',
      };
      for (let i = 0; i < 2; i++) processes.push(startAthanor(['compute', 'run', '-c', '4'], computeEnv));
      const complete = async () => (await user.networkStatus(network)).complete ?? 0;
      await until('the drain to be under way', async () => (await complete()) >= 10, 30_000);

      const token = await fetch(`${url}/v1/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: 'alice-key-0123456789' }),
      }).then(async (r) => ((await r.json()) as { access_token: string }).access_token);

      const completeBeforeOutage = await complete();
      cluster.kill();
      const outage: Awaited<ReturnType<typeof probe>>[] = [];
      const outageEnds = Date.now() + 3000;
      while (Date.now() < outageEnds) {
        outage.push(await probe(`${url}/readyz`));
        outage.push(
          await probe(`${url}/v1/networks/${network}/status`, {
            headers: { authorization: `Bearer ${token}` },
          }),
        );
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(server.alive(), server.log()).toBe(true);
      cluster.start();
      // At most 8 tasks were in flight when the database went away: 12 more completions within 5 s
      // of its return means new claims were made and finished, i.e. the drain resumed.
      await until('work to resume', async () => (await complete()) >= completeBeforeOutage + 12, 5_000);
      await until('every task to complete', async () => (await complete()) === taskCount, 90_000).catch(
        async (error: unknown) => {
          const status = await user.networkStatus(network).catch(() => 'unavailable');
          throw new Error(
            `${(error as Error).message}; status ${JSON.stringify(status)}; logs:\n${processes.map((p) => p.log()).join('\n---\n')}`,
          );
        },
      );

      // During the outage: readiness and the API said 503 with Retry-After and the error shape.
      expect(outage.filter((p) => p.status !== 503)).toEqual([]);
      for (const p of outage) {
        expect(p.retryAfter).not.toBeNull();
        expect(p.body).toMatchObject({ error: { code: 'database_unavailable' } });
      }
      expect(outage.map((p) => p.status).filter((status) => !acceptableStatus(status))).toEqual([]);
      expect(processes.filter((p) => !p.alive()).map((p) => p.log())).toEqual([]);

      // Every task completed exactly once, and every result has its bytes: in its row, or its blob.
      const check = await openStore({ databaseUrl, busyTimeoutMs: 1000 });
      try {
        const results = await check.db
          .selectFrom('results')
          .select(['task_id', 'outcome', 'blob_sha256', 'body'])
          .execute();
        expect(
          results
            .filter((r) => r.outcome === 'ok')
            .map((r) => r.task_id)
            .sort(),
        ).toEqual([...tasks].sort());
        const objects = openObjectStore(objectsUrl);
        for (const r of results) {
          if (r.body === null) expect(await objects.head(blobKey(r.blob_sha256!))).toBeDefined();
          else expect(createHash('sha256').update(r.body).digest('hex')).toBe(r.blob_sha256);
        }
      } finally {
        await check.close();
      }
      for (const p of processes) p.child.kill('SIGTERM');
      expect(await Promise.all(processes.map((p) => p.exited))).toEqual(processes.map(() => 0));
    } finally {
      for (const p of processes) if (p.alive()) p.child.kill('SIGKILL');
      cluster.stop();
    }
  },
);
