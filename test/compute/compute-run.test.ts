import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startComputeRun } from '../helpers/compute-run.js';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const computeRun = (credentials: Parameters<typeof startComputeRun>[0], extra: string[] = []) =>
  startComputeRun(credentials, ['--concurrency', '4', ...extra]);

const kill = (child: ChildProcess) => child.kill('SIGKILL');

describeEachBackend('athanor compute run', (backend) => {
  const dir = tempDir();

  it('a service killed with SIGKILL loses no task: its leases expire and another service completes them', async () => {
    // The lease outlives a 1.5 s task twice over, so the rescuer's heartbeats keep theirs on a busy machine.
    const server = await startTestServer(backend, dir, { leaseTtlMs: 3000, sweepIntervalMs: 200 });
    const { user, computeCredentials } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user, {
      count: 4,
      protocol: 'sleep',
      inputs: (i) => ({ seconds: 1.5, i }),
    });
    const doomed = computeRun(computeCredentials);
    await until('the expected state', async () => (await user.networkStatus(network)).running === 4, 20_000);
    kill(doomed.child);
    expect(await doomed.exited).toBe(null);
    await until('the expected state', async () => (await user.networkStatus(network)).waiting === 4, 20_000);
    const rescuer = computeRun(computeCredentials);
    await until('the expected state', async () => (await user.networkStatus(network)).complete === 4, 30_000);
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);
    for (const id of tasks) {
      const task = await user.getTask(id);
      expect(task.attempts).toBe(2);
      expect((await user.taskResults(id)).map((r) => r.outcome)).toEqual(['ok']);
    }
  });

  it('a server restart loses no task: the service backs off, reconnects and reports', async () => {
    const first = await startTestServer(backend, dir);
    const { user, computeCredentials } = await queueClients(first);
    const { network } = await networkWithTasks(user, {
      count: 3,
      protocol: 'sleep',
      inputs: (i) => ({ seconds: 2, i }),
    });
    const run = computeRun(computeCredentials);
    await until('the expected state', async () => (await user.networkStatus(network)).running === 3, 20_000);
    const port = Number(new URL(first.url).port);
    await first.close();
    // The same database and port come back a little later, as after a restart or a deploy.
    await new Promise((r) => setTimeout(r, 2500));
    const app = await buildApp({ store: first.store, config: first.config, logger: false });
    await app.listen({ host: '127.0.0.1', port });
    try {
      await until(
        'the expected state',
        async () => (await user.networkStatus(network)).complete === 3,
        40_000,
      );
      for (const task of await user.listTasks({ network })) expect(task.attempts).toBe(1);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
      await app.close();
    }
  });

  it('on SIGTERM stops claiming, finishes the tasks it holds, deregisters and exits 0', async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials } = await queueClients(server);
    const { network } = await networkWithTasks(user, {
      count: 6,
      protocol: 'sleep',
      inputs: (i) => ({ seconds: 1, i }),
    });
    const run = computeRun(computeCredentials);
    await until('the expected state', async () => (await user.networkStatus(network)).running === 4, 20_000);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(await user.networkStatus(network)).toEqual({ complete: 4, waiting: 2 });
    expect(run.log()).toContain('deregistered');
    const services = await server.store.db.selectFrom('compute_services').select('state').execute();
    expect(services.map((s) => s.state)).toEqual(['deregistered']);
  });

  it('runs plug-in protocols, streams their results, and reports their failures with the error text', async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials } = await queueClients(server);
    const plugin = `${dir}/protocols.mjs`;
    writeFileSync(
      plugin,
      [
        "import { Readable } from 'node:stream';",
        'export async function square(inputs) { if (inputs.n < 0) throw new Error("negative input"); return { square: inputs.n * inputs.n }; }',
        'export async function blocks(inputs) { return Readable.from((function* () { for (let i = 0; i < inputs.count; i++) yield Buffer.alloc(65536, i % 251); })()); }',
      ].join('\n'),
    );
    const squares = await networkWithTasks(user, {
      count: 2,
      protocol: 'square',
      inputs: (i) => ({ n: i === 0 ? 7 : -1 }),
    });
    const streamed = await networkWithTasks(user, {
      name: 'blocks',
      count: 1,
      protocol: 'blocks',
      inputs: () => ({ count: 48 }),
    });
    const run = computeRun(computeCredentials, ['--protocols', plugin]);
    await until(
      'the expected state',
      async () => {
        const s = await user.scopeStatus();
        const counts = s['org-camp-p'] ?? {};
        return (counts.complete ?? 0) + (counts.error ?? 0) === 3;
      },
      30_000,
    );
    run.child.kill('SIGTERM');
    await run.exited;
    const [ok] = await user.taskResults(squares.tasks[0]!);
    const body = Buffer.concat(await (await user.downloadResult(ok!.id)).toArray()).toString();
    expect(JSON.parse(body)).toEqual({ square: 49 });
    expect((await user.getTask(squares.tasks[1]!)).lastError).toContain('negative input');
    const [big] = await user.taskResults(streamed.tasks[0]!);
    const expected = createHash('sha256');
    for (let i = 0; i < 48; i++) expected.update(Buffer.alloc(65536, i % 251));
    expect(big).toMatchObject({ sizeBytes: 48 * 65536, sha256: expected.digest('hex') });
  });
});
