import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ComputeClient } from '../../src/client/compute-client.js';
import { UserClient } from '../../src/client/user-client.js';
import { configDefaults } from '../../src/config/resolve-config.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../helpers/backends.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { networkWithTasks } from '../helpers/queue.js';
import { probe, startAthanor, prepareDatabase } from './processes.js';
import { until } from '../helpers/until.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const rounds = 3;
const perRound = 12;

describeEachBackend('serve killed right after results stored in their rows are acknowledged', (backend) => {
  it(
    'after SIGKILL and a restart, every acknowledged result is there and downloads with its sha256',
    { timeout: 240_000 },
    async () => {
      const dir = tempDir();
      const databaseUrl = await freshDatabaseUrl(backend, dir);
      await prepareDatabase(databaseUrl);
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const serve = () =>
        startAthanor(['serve', '--port', String(port)], {
          ATHANOR_DATABASE_URL: databaseUrl,
          ATHANOR_OBJECTS_URL: `file:${path.join(dir, 'objects')}`,
          ATHANOR_DATA_DIR: dir,
        });
      const ready = () =>
        until('the server to be ready', async () => (await probe(`${url}/readyz`)).status === 200, 30_000);
      const processes = [serve()];
      try {
        await ready();
        const user = new UserClient({ url, identifier: 'alice', key: 'alice-key-0123456789' });
        await networkWithTasks(user, { count: rounds * perRound });
        const acknowledged = new Map<string, { sha256: string; body: Buffer }>();
        for (let round = 0; round < rounds; round++) {
          // A fresh client each round: the restarted server signs tokens with the stored secret.
          const compute = new ComputeClient({ url, identifier: 'hpc', key: 'hpc-key-0123456789' });
          const { id } = await compute.register(`round-${round}`);
          const claims = await compute.claim(id, { count: perRound });
          expect(claims).toHaveLength(perRound);
          // Random bytes within the row limit: every one is stored in its row, none as a blob.
          const bodies = claims.map(() =>
            randomBytes(1 + Math.floor(Math.random() * configDefaults.inlineResultMaxBytes)),
          );
          const half = perRound / 2;
          const batch = compute.exchange(id, {
            results: claims.slice(0, half).map((c, i) => ({
              task: c.task,
              leaseToken: c.leaseToken,
              outcome: 'ok' as const,
              body: bodies[i]!,
            })),
          });
          // Settled as they come (a refused one is not acknowledged), so none is left unhandled.
          const single = Promise.allSettled(
            claims
              .slice(half)
              .map((c, i) => compute.submitResult(c.task, c.leaseToken, 'ok', bodies[half + i]!)),
          );
          const answers = await batch;
          for (const [i, answer] of answers.results.entries()) {
            expect(answer.result?.sha256).toBe(sha256(bodies[i]!));
            acknowledged.set(claims[i]!.task, { sha256: answer.result!.sha256, body: bodies[i]! });
          }
          // The kill lands as soon as the batch is acknowledged, while the single results may still
          // be in flight: only those answered count as acknowledged.
          const server = processes[processes.length - 1]!;
          server.child.kill('SIGKILL');
          await server.exited;
          const settled = await single;
          for (const [i, outcome] of settled.entries()) {
            if (outcome.status !== 'fulfilled') continue;
            expect(outcome.value.sha256).toBe(sha256(bodies[half + i]!));
            acknowledged.set(claims[half + i]!.task, {
              sha256: outcome.value.sha256,
              body: bodies[half + i]!,
            });
          }
          processes.push(serve());
          await ready();
        }
        expect(acknowledged.size).toBeGreaterThanOrEqual(rounds * (perRound / 2));

        for (const [task, { sha256: digest, body }] of acknowledged) {
          const results = await user.taskResults(task);
          expect(results, task).toHaveLength(1);
          expect(results[0]).toMatchObject({ outcome: 'ok', sha256: digest, sizeBytes: body.length });
          const downloaded = Buffer.concat(await (await user.downloadResult(results[0]!.id)).toArray());
          expect(sha256(downloaded)).toBe(digest);
          expect((await user.getTask(task)).status).toBe('complete');
        }
        // Stored in their rows only: the object store holds no blob at all.
        expect(existsSync(path.join(dir, 'objects', 'blobs'))).toBe(false);
        const last = processes[processes.length - 1]!;
        last.child.kill('SIGTERM');
        expect(await last.exited).toBe(0);
      } finally {
        for (const p of processes) if (p.alive()) p.child.kill('SIGKILL');
      }
    },
  );
});
