import { text } from 'node:stream/consumers';
import { afterAll, expect, it } from 'vitest';
import { sweep } from '../../src/service/sweep.js';
import { runCli } from '../helpers/cli.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startComputeRun } from '../helpers/compute-run.js';
import { startTestServer } from '../helpers/server.js';
import { startTcpProxy } from '../faults/tcp-proxy.js';
import { until } from '../helpers/until.js';

const computeRun = startComputeRun;

describeEachBackend('logs, progress and run limits, through real processes', (backend) => {
  const dir = tempDir();

  it("a failing exec task's stdout and stderr are readable through task logs", async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials, userCredentials } = await queueClients(server);
    const script = "console.log('partial output'); console.error('disk nearly full'); process.exit(3)";
    const { tasks } = await networkWithTasks(user, {
      protocol: 'exec',
      inputs: () => ({ command: [process.execPath, '-e', script] }),
    });
    const run = computeRun(computeCredentials, ['--allow-exec', '--max-tasks', '1']);
    // --max-tasks 1: the service ends by itself once its one task is reported and its log sent.
    expect(await run.exited, run.log()).toBe(0);
    expect((await user.getTask(tasks[0]!)).status).toBe('error');

    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const logs = await runCli(['task', 'logs', tasks[0]!], { env });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/^\S+Z stdout partial output$/m);
    expect(logs.stdout).toMatch(/^\S+Z stderr disk nearly full$/m);
    expect(logs.stdout).toMatch(/^\S+Z log task failed: Command failed: /m);

    // --follow on an attempt that already ended prints its log and returns.
    const followed = await runCli(['task', 'logs', tasks[0]!, '--follow'], { env });
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe(logs.stdout);
    expect(followed.stderr).toMatch(/\[attempt 1\] failed at /);

    const missing = await runCli(['task', 'logs', tasks[0]!, '--attempt', '2'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no attempt 2/);
  });

  it('a running sleep task shows its progress, and --max-time ends the service with exit 0', async () => {
    // A 2 s lease: the service heartbeats every 500 ms.
    const server = await startTestServer(backend, dir, { leaseTtlMs: 2000, sweepIntervalMs: 200 });
    const { user, computeCredentials, userCredentials } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user, {
      protocol: 'sleep',
      inputs: () => ({ seconds: 60 }),
    });
    const run = computeRun(computeCredentials, ['--max-time', '8s', '--grace-ms', '200']);
    const seen: number[] = [];
    await until(
      'the expected state',
      async () => {
        const progress = (await user.getTask(tasks[0]!)).progress;
        if (progress?.fraction != null && seen.at(-1) !== progress.fraction) seen.push(progress.fraction);
        return seen.length >= 2;
      },
      20_000,
    );
    // It moves between heartbeats, and says what it did.
    expect(seen[1]!).toBeGreaterThan(seen[0]!);
    expect((await user.getTask(tasks[0]!)).progress?.message).toMatch(/^slept \d+\.\d s of 60 s$/);
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const listed = await runCli(['task', 'list', '--network', network], { env });
    expect(listed.stdout).toMatch(/\brunning\s+\d+\s+1\s+\d+% slept \d+\.\d s of 60 s\s/);
    const history = await runCli(['task', 'history', tasks[0]!], { env });
    expect(history.stdout).toMatch(/^ {2}progress: \d+% slept \d+\.\d s of 60 s \(at \S+\)$/m);

    expect(await run.exited, run.log()).toBe(0);
    expect(run.log()).toMatch(/--max-time/);
    // Past its time the service released the task it could not finish: back to waiting, no progress.
    const task = await user.getTask(tasks[0]!);
    expect(task).toMatchObject({ status: 'waiting', progress: null });
    const [attempt] = await user.taskAttempts(tasks[0]!);
    expect(attempt!.outcome).toBe('released');
    // Its log says why it stopped.
    await until(
      'the expected state',
      async () => (await user.taskAttempts(tasks[0]!))[0]!.logSizeBytes !== null,
      10_000,
    );
    const log = await text(await user.attemptLog(tasks[0]!, 1));
    expect(log).toMatch(/interrupted/);
  });

  it('--max-tasks and --exclude-scope: two tasks done, the excluded and the third left waiting, exit 0', async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials } = await queueClients(server);
    const wanted = await networkWithTasks(user, { scope: 'org-camp-a', name: 'a', count: 3 });
    const excluded = await networkWithTasks(user, { scope: 'org-camp-b', name: 'b', count: 2 });
    const run = computeRun(computeCredentials, ['--max-tasks', '2', '--exclude-scope', 'org-camp-b']);
    expect(await run.exited, run.log()).toBe(0);
    const statuses = await Promise.all(wanted.tasks.map(async (t) => (await user.getTask(t)).status));
    expect(statuses.sort()).toEqual(['complete', 'complete', 'waiting']);
    for (const t of excluded.tasks) expect((await user.getTask(t)).attempts).toBe(0);
  });

  it('gives up a result upload after --upload-retry while the server is unreachable; the lease then expires', async () => {
    const server = await startTestServer(backend, dir, { leaseTtlMs: 2000 });
    const { user, computeCredentials } = await queueClients(server);
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    afterAll(() => proxy.close());
    const { tasks } = await networkWithTasks(user, { protocol: 'sleep', inputs: () => ({ seconds: 1 }) });
    const run = computeRun({ ...computeCredentials, url: `http://127.0.0.1:${proxy.port}` }, [
      '--upload-retry',
      '2s',
    ]);
    await until(
      'the expected state',
      async () => (await user.getTask(tasks[0]!)).status === 'running',
      20_000,
    );
    await proxy.down();
    expect(await run.exited).toBe(1);
    expect(run.log()).toMatch(/gave up sending the result of task-\S+ after 2000 ms/);
    // Nothing was released: the lease runs out on the server and the attempt is recorded as expired.
    await sweep(server.store, Date.now() + 5000);
    const [attempt] = await user.taskAttempts(tasks[0]!);
    expect(attempt!.outcome).toBe('expired');
    expect((await user.getTask(tasks[0]!)).status).toBe('waiting');
  });
});
