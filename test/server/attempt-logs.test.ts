import { text } from 'node:stream/consumers';
import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

describeEachBackend('attempt logs, progress and claim exclusions', (backend) => {
  const dir = tempDir();

  it("attaches an attempt's log once, after it failed, and shows it only to the task's tenant", async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const otherTenant = (await queueClients(server, 'other-camp-*')).user;
    const otherWorker = (await queueClients(server)).compute;
    const { tasks } = await networkWithTasks(user);
    const task = tasks[0]!;
    const { id } = await compute.register('logs', 'node-1');
    const [claim] = await compute.claim(id, { count: 1 });

    // Running, nothing sent yet: an empty log so far, not the whole of it.
    const running = await user.readAttemptLog(task, 1);
    expect(running).toMatchObject({ complete: false, running: true });
    expect(await text(running.stream)).toBe('');
    await compute.submitResult(task, claim!.leaseToken, 'failed', Buffer.from('Boom'));
    const log = '2026-12-02T00:00:00.000Z stderr line one\n2026-12-02T00:00:01.000Z log done\n';
    // The attempt has ended: its holder may still attach the log, once.
    const attached = await compute.uploadLog(task, claim!.leaseToken, Buffer.from(log));
    expect(attached.sizeBytes).toBe(Buffer.byteLength(log));
    await expect(compute.uploadLog(task, claim!.leaseToken, Buffer.from('other'))).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(otherWorker.uploadLog(task, claim!.leaseToken, Buffer.from('forged'))).rejects.toMatchObject(
      {
        status: 409,
      },
    );

    expect(await text(await user.attemptLog(task, 1))).toBe(log);
    const [attempt] = await user.taskAttempts(task);
    expect(attempt).toMatchObject({ attempt: 1, outcome: 'failed', logSizeBytes: Buffer.byteLength(log) });
    await expect(user.attemptLog(task, 2)).rejects.toMatchObject({ code: 'not_found' });

    // Another tenant cannot tell the task exists.
    const foreign = await otherTenant.attemptLog(task, 1).catch((error: unknown) => error);
    const missing = await otherTenant.attemptLog('task-nothere', 1).catch((error: unknown) => error);
    expect(foreign).toMatchObject({ status: 404 });
    expect((foreign as Error).message.replace(task, 'X')).toBe(
      (missing as Error).message.replace('task-nothere', 'X'),
    );
  });

  it('keeps the progress a heartbeat carries while the lease is live, in views, details and the gauge', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('progress', 'node-2');
    const [first, second] = await compute.claim(id, { count: 2 });
    await compute.heartbeat(id, [
      {
        task: first!.task,
        leaseToken: first!.leaseToken,
        progress: { fraction: 0.6, message: 'step 6 of 10' },
      },
      // A stale token's progress is dropped with it.
      { task: second!.task, leaseToken: second!.leaseToken + 1, progress: { fraction: 0.9 } },
    ]);
    expect((await user.getTask(first!.task)).progress).toMatchObject({
      fraction: 0.6,
      message: 'step 6 of 10',
    });
    expect((await user.getTask(second!.task)).progress).toBeNull();
    const [detail] = await user.taskDetails([first!.task]);
    expect(detail!.result!.progress).toMatchObject({ fraction: 0.6 });

    const metrics = await call(server.url, undefined, 'GET', '/metrics');
    expect(metrics.text).toMatch(/athanor_running_tasks_by_progress\{bucket="50-75"\} 1\b/);

    // Progress belongs to the lease: once the result is in, none is shown.
    await compute.submitResult(first!.task, first!.leaseToken, 'ok', Buffer.from('{}'));
    expect((await user.getTask(first!.task)).progress).toBeNull();
    expect(tasks).toContain(first!.task);

    const tooLong = await compute
      .heartbeat(id, [{ task: first!.task, leaseToken: 1, progress: { message: 'x'.repeat(1001) } }])
      .catch((error: unknown) => error);
    expect(tooLong).toMatchObject({ status: 400 });
  });

  it('never claims tasks in an excluded scope', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const kept = await networkWithTasks(user, { scope: 'org-camp-keep', name: 'keep', count: 3 });
    const skipped = await networkWithTasks(user, { scope: 'org-camp-skip', name: 'skip', count: 3 });
    const { id } = await compute.register('exclude', 'node-3');
    const claims = await compute.claim(id, { count: 10, excludeScopes: ['org-camp-skip'] });
    expect(claims.map((c) => c.task).sort()).toEqual([...kept.tasks].sort());
    expect(await compute.claim(id, { count: 10, excludeScopes: ['org-*-*'] })).toEqual([]);
    expect((await compute.claim(id, { count: 10 })).map((c) => c.task).sort()).toEqual(
      [...skipped.tasks].sort(),
    );
  });

  it('restart policies match the whole failure text, past the 64 KiB kept on the task', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user);
    await user.addRestartPolicies(network, [{ pattern: 'OutOfMemoryError', maxRetries: 1 }]);
    const { id } = await compute.register('restart', 'node-4');
    const [claim] = await compute.claim(id, { count: 1 });
    const failure = `RuntimeError: worker died\n${'  at frame\n'.repeat(8000)}Caused by: OutOfMemoryError`;
    expect(Buffer.byteLength(failure)).toBeGreaterThan(64 * 1024);
    const stored = await compute.submitResult(tasks[0]!, claim!.leaseToken, 'failed', Buffer.from(failure));
    expect(stored.status).toBe('waiting');
    expect((await user.getTask(tasks[0]!)).status).toBe('waiting');
  });
});
