import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { ComputeClient } from '../../src/client/compute-client.js';
import { UserClient } from '../../src/client/user-client.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { networkWithTasks } from '../helpers/queue.js';
import { readiness, startServeProcess } from '../helpers/serve-process.js';
import { seedQueueIdentities } from '../helpers/identities.js';
import { freshStore } from '../helpers/store.js';
import { until } from '../helpers/until.js';

/** A body that trickles out `chunks` chunks of 64 KiB, one every `everyMs` (or never ends). */
function slowBody(chunks: number, everyMs: number, seed: string): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent === chunks) return;
      setTimeout(() => {
        const chunk = Buffer.alloc(64 * 1024, `${seed}${sent}`);
        hash.update(chunk);
        sent++;
        this.push(chunk);
        if (sent === chunks && chunks !== Infinity) this.push(null);
      }, everyMs);
    },
  });
  return { stream, sha256: () => hash.copy().digest('hex') };
}

describeEachBackend('graceful shutdown of athanor serve', (backend) => {
  const dir = tempDir();

  async function setUp(name: string, env: Record<string, string>) {
    const { store, url: databaseUrl } = await freshStore(backend, dir);
    const { user: alice, compute: hpc } = await seedQueueIdentities(store);
    const objectsDir = path.join(dir, `objects-${name}`);
    const server = await startServeProcess(await freePort(), {
      ATHANOR_DATABASE_URL: databaseUrl,
      ATHANOR_DATA_DIR: path.join(dir, `data-${name}`),
      ATHANOR_OBJECTS_URL: `file:${objectsDir}`,
      ...env,
    });
    const user = new UserClient({ url: server.url, identifier: alice.identifier, key: alice.key });
    const compute = new ComputeClient({ url: server.url, identifier: hpc.identifier, key: hpc.key });
    const { network, tasks } = await networkWithTasks(user, { count: 1 });
    const service = await compute.register('worker');
    const [claim] = await compute.claim(service.id, { count: 1 });
    if (!claim) throw new Error('the one task was not claimable');
    return { store, server, user, compute, service, claim, network, task: tasks[0]!, objectsDir };
  }

  it(
    'turns readiness off first, keeps serving for the delay, ends a long poll at once, finishes an upload, exits 0',
    { timeout: 90_000 },
    async () => {
      const { store, server, user, compute, service, claim, network, objectsDir } = await setUp('clean', {
        ATHANOR_SHUTDOWN_DELAY_MS: '1500',
      });
      expect(await readiness(server.url)).toMatchObject({
        status: 200,
        body: { status: 'ready', inFlight: 0 },
      });

      // A result upload that takes about three seconds, and a claim that would wait 40 s for work.
      const body = slowBody(48, 60, 'r');
      const upload = compute.submitResult(claim.task, claim.leaseToken, 'ok', body.stream);
      const longPollStarted = Date.now();
      const longPoll = compute.claim(service.id, { count: 1, waitMs: 40_000 });
      await until(
        'the expected state',
        async () => (((await readiness(server.url)).body.inFlight as number) >= 2 ? true : undefined),
        10_000,
      );

      server.child.kill('SIGTERM');
      const draining = await until(
        'readiness to turn off',
        async () => {
          const state = await readiness(server.url);
          return state.status === 503 ? state : undefined;
        },
        5_000,
      );
      expect(draining.body).toMatchObject({ error: { code: 'shutting_down' }, status: 'not_ready' });
      // Still serving while balancers take it out: a read works during the delay.
      expect((await user.getNetwork(network)).key).toBe(network);

      expect(await longPoll).toEqual([]);
      expect(Date.now() - longPollStarted).toBeLessThan(40_000);
      const stored = await upload;
      expect(stored).toMatchObject({ status: 'complete', sha256: body.sha256() });
      expect(await server.exited, server.log()).toBe(0);
      expect(server.log()).toContain('stopped');

      // The result that was uploading during the shutdown is recorded and its bytes are kept.
      const row = await store.db
        .selectFrom('results')
        .select(['blob_sha256', 'size_bytes'])
        .where('task_id', '=', claim.task)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ blob_sha256: body.sha256(), size_bytes: 48 * 64 * 1024 });
      const blob = readFileSync(
        path.join(objectsDir, 'blobs/sha256', row.blob_sha256!.slice(0, 2), row.blob_sha256!),
      );
      expect(createHash('sha256').update(blob).digest('hex')).toBe(body.sha256());
      const task = await store.db
        .selectFrom('tasks')
        .select('status')
        .where('id', '=', claim.task)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('complete');
    },
  );

  it(
    'exits 1 at the shutdown deadline with a request still in flight, saying why',
    { timeout: 60_000 },
    async () => {
      const { store, server, compute, claim } = await setUp('deadline', {
        ATHANOR_SHUTDOWN_DELAY_MS: '0',
        ATHANOR_SHUTDOWN_TIMEOUT_MS: '1500',
      });
      const stalled = slowBody(Infinity, 200, 's');
      const upload = compute
        .submitResult(claim.task, claim.leaseToken, 'ok', stalled.stream)
        .catch((e: Error) => e);
      await until(
        'the expected state',
        async () => (((await readiness(server.url)).body.inFlight as number) >= 1 ? true : undefined),
        10_000,
      );
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(1);
      expect(server.log()).toContain('ATHANOR_SHUTDOWN_TIMEOUT_MS');
      stalled.stream.destroy();
      expect(await upload).toBeInstanceOf(Error);
      // The unfinished upload recorded nothing: the task keeps its lease and will be retried.
      const task = await store.db
        .selectFrom('tasks')
        .select('status')
        .where('id', '=', claim.task)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('running');
      const results = await store.db
        .selectFrom('results')
        .select('id')
        .where('task_id', '=', claim.task)
        .execute();
      expect(results).toEqual([]);
    },
  );

  it('exits 1 at once on a second signal during the readiness delay', { timeout: 60_000 }, async () => {
    const { server } = await setUp('twice', { ATHANOR_SHUTDOWN_DELAY_MS: '30000' });
    server.child.kill('SIGTERM');
    await until(
      'the expected state',
      async () => ((await readiness(server.url)).status === 503 ? true : undefined),
      5_000,
    );
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    expect(server.log()).toContain('received SIGTERM again');
  });
});
