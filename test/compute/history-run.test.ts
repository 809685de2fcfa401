import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { FailureView, TaskDetail } from '../../src/client/user-client.js';
import { runCli } from '../helpers/cli.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startComputeRun } from '../helpers/compute-run.js';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const computeRun = startComputeRun;

describeEachBackend('what happened to my tasks, through real processes', (backend) => {
  const dir = tempDir();

  it('revoking a running task aborts it in the compute service, which then goes on to other work', async () => {
    // A 2 s lease: the service heartbeats every 500 ms.
    const server = await startTestServer(backend, dir, { leaseTtlMs: 2000, sweepIntervalMs: 200 });
    const { user, computeCredentials } = await queueClients(server);
    const plugin = path.join(dir, `wait-for-abort-${backend}.mjs`);
    const marker = path.join(dir, `aborted-${backend}`);
    writeFileSync(
      plugin,
      [
        "import { writeFileSync } from 'node:fs';",
        'export async function endless(inputs, context) {',
        '  await new Promise((resolve, reject) => context.signal.addEventListener("abort", () => {',
        '    writeFileSync(inputs.marker, "aborted"); reject(new Error("interrupted"));',
        '  }));',
        '}',
      ].join('\n'),
    );
    const endless = await networkWithTasks(user, { protocol: 'endless', inputs: () => ({ marker }) });
    const run = computeRun(computeCredentials, ['--protocols', plugin]);
    try {
      await until(
        'the expected state',
        async () => (await user.getTask(endless.tasks[0]!)).status === 'running',
        20_000,
      );
      await user.setTaskStatus(endless.tasks, 'deleted', 'no longer needed');
      await until('the expected state', () => existsSync(marker), 20_000);
      // Its one slot is free again: a task submitted now completes.
      const next = await networkWithTasks(user, { name: 'next', protocol: 'echo' });
      await until(
        'the expected state',
        async () => (await user.getTask(next.tasks[0]!)).status === 'complete',
        20_000,
      );
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    const [attempt] = await user.taskAttempts(endless.tasks[0]!);
    expect(attempt).toMatchObject({
      outcome: 'revoked',
      reason: 'the task was set deleted: no longer needed',
    });
    expect(await user.taskResults(endless.tasks[0]!)).toEqual([]);
    expect((await user.getTask(endless.tasks[0]!)).status).toBe('deleted');
  });

  it('task history and task errors answer which tasks were retried, where, and why they failed', async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials, userCredentials } = await queueClients(server);
    // Longer than the 64 KiB kept on the task: task errors must give all of it.
    const longText = `disk full on scratch ${'#'.repeat(100_000)} end-of-text`;
    const { network, tasks } = await networkWithTasks(user, {
      count: 2,
      protocol: 'sleep',
      inputs: (i) => (i === 0 ? { seconds: 0, fail: longText } : { seconds: 0 }),
    });
    await user.addRestartPolicies(network, [{ pattern: 'disk full', maxRetries: 1 }]);
    const run = computeRun(computeCredentials, ['--name', 'hist-svc']);
    try {
      await until(
        'the expected state',
        async () => {
          const status = await user.networkStatus(network);
          return status.error === 1 && status.complete === 1;
        },
        30_000,
      );
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };

    const retried = await runCli(['task', 'history', '--network', network, '--retried'], { env });
    expect(retried.code, retried.stderr).toBe(0);
    const lines = retried.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TASK\s+STATUS\s+CLAIMS\s+LAST OUTCOME\s+WHERE\s+LAST ERROR$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(tasks[0]!);
    expect(lines[1]).toMatch(/\berror\s+2\s+failed\s+worker\S+@\S+\s+disk full on scratch/);

    const one = await runCli(['task', 'history', tasks[0]!, '--json'], { env });
    expect(one.code, one.stderr).toBe(0);
    const [detail] = JSON.parse(one.stdout) as { task: string; result: TaskDetail }[];
    expect(detail!.result.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
    ]);

    const errors = await runCli(['task', 'errors', '--network', network, '--json'], { env });
    expect(errors.code, errors.stderr).toBe(0);
    const failures = JSON.parse(errors.stdout) as FailureView[];
    expect(failures).toHaveLength(2);
    for (const failure of failures) {
      // The executor's message, whole; never the compute service's own stack frames.
      expect(failure).toMatchObject({ task: tasks[0], errorClass: null });
      expect(failure.message).toBe(longText);
      expect(failure.traceback).toBe(longText);
    }

    const missing = await runCli(['task', 'history', 'task-nope'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no task 'task-nope' in your scopes");
    const usage = await runCli(['task', 'errors'], { env });
    expect(usage.code).toBe(2);
  });
});
