import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { startComputeRun } from '../helpers/compute-run.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

/** A program that prints a numbered line every second until `stopFile` exists (at most 120). */
const ticker = (stopFile: string) =>
  [
    `const fs = require('node:fs'); let i = 0;`,
    `const t = setInterval(() => { console.log('tick ' + ++i);`,
    `  if (fs.existsSync(${JSON.stringify(stopFile)}) || i >= 120) clearInterval(t); }, 1000);`,
  ].join(' ');

const ticks = (output: string) => [...output.matchAll(/^\S+Z stdout tick (\d+)$/gm)].map((m) => Number(m[1]));

describeEachBackend('following a running task', (backend) => {
  const dir = tempDir();

  it(
    'task logs --follow prints lines while the exec task runs, then the rest, each exactly once',
    { timeout: 180_000 },
    async () => {
      // A 2 s lease: the compute service heartbeats every 500 ms, each heartbeat carrying new lines.
      const server = await startTestServer(backend, dir, { leaseTtlMs: 2000 });
      const { user, computeCredentials, userCredentials } = await queueClients(server);
      const stopFile = path.join(dir, `stop-${backend}`);
      const { tasks } = await networkWithTasks(user, {
        protocol: 'exec',
        inputs: () => ({ command: [process.execPath, '-e', ticker(stopFile)] }),
      });
      const task = tasks[0]!;
      const run = startComputeRun(computeCredentials, ['--allow-exec', '--max-tasks', '1']);
      await until('the expected state', async () => (await user.getTask(task)).status === 'running', 60_000);

      const env = {
        ATHANOR_URL: server.url,
        ATHANOR_ID: userCredentials.identifier,
        ATHANOR_KEY: userCredentials.key,
      };
      const follow = startCli(['task', 'logs', task, '--follow'], { env });
      await until('the expected state', () => ticks(follow.stdout()).length > 0, 60_000);
      // The line arrived while the task runs: it stops only once told to.
      expect(existsSync(stopFile)).toBe(false);
      expect((await user.getTask(task)).status).toBe('running');
      const [attempt] = await user.taskAttempts(task);
      expect(attempt).toMatchObject({ endedAt: null, logSizeBytes: null });
      // What the running attempt sent so far is readable, and said to be incomplete.
      const partial = await user.readAttemptLog(task, 1);
      expect(partial).toMatchObject({ complete: false, running: true });
      expect(ticks(await text(partial.stream)).length).toBeGreaterThan(0);

      writeFileSync(stopFile, '');
      const followed = await follow.done;
      expect(followed.code, followed.stderr).toBe(0);
      expect(await run.exited, run.log()).toBe(0);
      expect((await user.getTask(task)).status).toBe('complete');

      const final = await user.readAttemptLog(task, 1);
      expect(final).toMatchObject({ complete: true, running: false });
      const whole = await text(final.stream);
      const numbers = ticks(whole);
      expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
      // Every line once: what was followed live and then from the uploaded log is that log.
      expect(followed.stdout).toBe(whole);
      expect(followed.stderr).toMatch(/\[attempt 1\] ok at /);
    },
  );

  it('an attempt that logged nothing: task logs says so and exits 1 (not found), --follow waits for it only shortly', async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials, userCredentials } = await queueClients(server);
    const { tasks } = await networkWithTasks(user);
    const run = startComputeRun(computeCredentials, ['--max-tasks', '1']);
    expect(await run.exited, run.log()).toBe(0);
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const shown = await runCli(['task', 'logs', tasks[0]!], { env });
    expect(shown.code).toBe(1);
    expect(shown.stdout).toBe('');
    expect(shown.stderr).toMatch(/attempt 1 of task 'task-\S+' \(ok\) has no log: it wrote no log lines/);
    const json = await runCli(['task', 'logs', tasks[0]!, '--json'], { env });
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'not_found' } });

    // The log of an attempt is waited for only shortly after the attempt ended.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const startedAt = Date.now();
    const followed = await runCli(['task', 'logs', tasks[0]!, '--follow'], { env });
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stderr).toMatch(/\[attempt 1\] ok at \S+\n\[attempt 1\] no log was uploaded\n/);
    // An attempt's log is waited for 10 s after it ended (this command used to wait 30 s from its start).
    expect(Date.now() - startedAt).toBeLessThan(20_000);
  });

  it('stores live appends only under the live lease, skips bytes it holds, and the uploaded log replaces them', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user);
    const task = tasks[0]!;
    const { id } = await compute.register('live-log');
    const [claim] = await compute.claim(id, { count: 1 });
    const leaseToken = claim!.leaseToken;
    const read = async () => {
      const log = await user.readAttemptLog(task, 1);
      return { ...log, text: await text(log.stream) };
    };
    expect(await read()).toMatchObject({ complete: false, running: true, text: '' });

    await compute.heartbeat(id, [{ task, leaseToken, log: { offset: 0, text: 'one\n' } }]);
    // The same append again (its answer was lost), then one overlapping it: no byte twice.
    await compute.heartbeat(id, [{ task, leaseToken, log: { offset: 0, text: 'one\n' } }]);
    await compute.heartbeat(id, [{ task, leaseToken, log: { offset: 0, text: 'one\ntwo\n' } }]);
    await compute.heartbeat(id, [{ task, leaseToken, log: { offset: 8, text: 'thrée\n' } }]);
    expect((await read()).text).toBe('one\ntwo\nthrée\n');
    const tail = await user.readAttemptLog(task, 1, 4);
    expect(await text(tail.stream)).toBe('two\nthrée\n');

    // A stale token: the heartbeat does not list the lease as held, and nothing is stored.
    const answer = await compute.heartbeat(id, [
      { task, leaseToken: leaseToken - 1, log: { offset: 15, text: 'stale\n' } },
    ]);
    expect(answer.leases).toEqual([]);
    expect((await read()).text).toBe('one\ntwo\nthrée\n');

    // That heartbeat released the lease it did not list: the attempt ended without an upload,
    // and what it sent while it ran stays readable, marked incomplete.
    expect(await read()).toMatchObject({ complete: false, running: false, text: 'one\ntwo\nthrée\n' });
    await compute.uploadLog(task, leaseToken, Buffer.from('one\ntwo\nthrée\nfour\n'));
    expect(await read()).toMatchObject({ complete: true, running: false, text: 'one\ntwo\nthrée\nfour\n' });
    const chunks = await server.store.db.selectFrom('attempt_log_chunks').selectAll().execute();
    expect(chunks).toEqual([]);
  });
});
