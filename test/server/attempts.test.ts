import { expect, it } from 'vitest';
import { sweep } from '../../src/service/sweep.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

describeEachBackend('attempt history', (backend) => {
  const dir = tempDir();

  it('records every claim once: ok, released, expired and failed attempts, with where and how they ended', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 1 });
    const task = tasks[0]!;
    const createdAt = (await user.getTask(task)).statusChangedAt;
    const { id } = await compute.register('hist', 'node-7');

    const [first] = await compute.claim(id, { count: 1 });
    const running = await user.getTask(task);
    expect(running.status).toBe('running');
    expect(running.statusChangedAt >= createdAt).toBe(true);
    await compute.release(task, first!.leaseToken);

    const [second] = await compute.claim(id, { count: 1 });
    // Past the lease (2 min) but not the registration (5 min).
    await sweep(server.store, Date.now() + 150_000);
    await expect(
      compute.submitResult(task, second!.leaseToken, 'ok', Buffer.from('late')),
    ).rejects.toMatchObject({ code: 'stale_lease' });

    const [third] = await compute.claim(id, { count: 1 });
    const stored = await compute.submitResult(
      task,
      third!.leaseToken,
      'failed',
      Buffer.from('ValueError: no'),
    );
    expect(stored.status).toBe('error');

    const attempts = await user.taskAttempts(task);
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'released'],
      [2, 'expired'],
      [3, 'failed'],
    ]);
    // The lease's fencing token is for the compute service alone: no user view carries it.
    expect(JSON.stringify(attempts)).not.toMatch(/lease_?token/i);
    expect(Object.keys(attempts[0]!)).not.toContain('claim');
    for (const a of attempts) {
      expect(a).toMatchObject({ task, computeService: id, hostname: 'node-7' });
      expect(a.computeIdentity).toMatch(/^worker/);
      expect(a.endedAt! >= a.claimedAt).toBe(true);
    }
    expect(attempts[1]!.reason).toMatch(/lease ran out/);
    expect(attempts[2]!.result).toBe(stored.result);
  });

  it("answers details for many tasks in one call, hiding tasks outside the caller's scopes", async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute, userCredentials } = await queueClients(server);
    const outsider = (await queueClients(server, 'other-camp-*')).user;
    const { tasks } = await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('details', 'gpu-1');
    const claims = await compute.claim(id, { count: 2 });
    const failing = claims[0]!;
    await compute.submitResult(
      failing.task,
      failing.leaseToken,
      'failed',
      Buffer.from(`Error: ${'x'.repeat(5000)}`),
    );
    const holding = claims[1]!;
    const idle = tasks.find((t) => t !== failing.task && t !== holding.task)!;

    const details = await user.taskDetails([failing.task, holding.task, idle, 'task-missing']);
    expect(details.map((d) => d.task)).toEqual([failing.task, holding.task, idle, 'task-missing']);
    expect(details[0]!.result).toMatchObject({ status: 'error', lastOutcome: 'failed', leaseHolder: null });
    expect(details[0]!.result!.lastErrorHead).toHaveLength(1000);
    expect(details[0]!.result!.lastErrorHead!.startsWith('Error: xxx')).toBe(true);
    expect(details[1]!.result).toMatchObject({
      status: 'running',
      lastOutcome: null,
      leaseHolder: { computeService: id, hostname: 'gpu-1' },
    });
    expect(details[1]!.result!.attempts).toHaveLength(1);
    expect(details[2]!.result).toMatchObject({ status: 'waiting', attempts: [], leaseHolder: null });
    expect(details[3]).toMatchObject({ result: null, error: 'not found in your scopes' });

    const hidden = await outsider.taskDetails([failing.task]);
    expect(hidden).toEqual([{ task: failing.task, result: null, error: 'not found in your scopes' }]);
    await expect(outsider.taskAttempts(failing.task)).rejects.toMatchObject({ code: 'not_found' });

    const token = await server.token('user', userCredentials.identifier, userCredentials.key);
    const tooMany = await call(server.url, token, 'POST', '/v1/tasks/details', {
      tasks: Array.from({ length: 10_001 }, (_, i) => `task-${i}`),
    });
    expect(tooMany.status).toBe(400);
  });

  it('keeps the reason a user gives with a status change', async () => {
    const server = await startTestServer(backend, dir);
    const { user, userCredentials } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 1 });
    const before = await user.getTask(tasks[0]!);
    await user.setTaskStatus(tasks, 'invalid', 'inputs were generated with the wrong force field');
    const after = await user.getTask(tasks[0]!);
    expect(after).toMatchObject({
      status: 'invalid',
      reason: 'inputs were generated with the wrong force field',
    });
    expect(after.statusChangedAt > before.statusChangedAt).toBe(true);
    const token = await server.token('user', userCredentials.identifier, userCredentials.key);
    const long = await call(server.url, token, 'POST', '/v1/tasks/status', {
      tasks,
      status: 'deleted',
      reason: 'x'.repeat(2001),
    });
    expect(long.status).toBe(400);
    expect((await user.getTask(tasks[0]!)).status).toBe('invalid');
  });
});

describeEachBackend('revocation', (backend) => {
  const dir = tempDir();

  it('invalidating a running task revokes its lease: gone from the heartbeat, its result refused', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('revoke');
    const claims = await compute.claim(id, { count: 2 });
    const doomed = claims.find((c) => c.task === tasks[0])!;
    const kept = claims.find((c) => c.task === tasks[1])!;
    await user.setTaskStatus([doomed.task], 'invalid', 'wrong inputs');
    const { leases } = await compute.heartbeat(id);
    expect(leases).toEqual([{ task: kept.task, leaseToken: kept.leaseToken }]);
    await expect(
      compute.submitResult(doomed.task, doomed.leaseToken, 'ok', Buffer.from('wasted')),
    ).rejects.toMatchObject({ code: 'stale_lease' });
    await expect(compute.extendLease(doomed.task, doomed.leaseToken)).rejects.toMatchObject({
      code: 'stale_lease',
    });
    const [attempt] = await user.taskAttempts(doomed.task);
    expect(attempt).toMatchObject({ outcome: 'revoked', result: null });
    expect(attempt!.reason).toBe('the task was set invalid: wrong inputs');
    expect(await user.taskResults(doomed.task)).toEqual([]);
    expect((await user.getTask(doomed.task)).status).toBe('invalid');
  });

  it('cancelling a running task from its last hub revokes it; from one of two active hubs it does not', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const first = await networkWithTasks(user, { count: 2, name: 'a' });
    // The same transformations in a second network: the tasks can be actioned on both hubs.
    const second = await user.submitNetwork({
      scope: 'org-camp-p',
      name: 'b',
      transformations: [0, 1].map((i) => ({ name: `t${i}`, protocol: 'echo', inputs: { i } })),
    });
    await user.actionTasks(second.key, [first.tasks[1]!]);
    const { id } = await compute.register('cancel');
    const claims = await compute.claim(id, { count: 2 });
    expect(claims).toHaveLength(2);
    const only = claims.find((c) => c.task === first.tasks[0])!;
    const shared = claims.find((c) => c.task === first.tasks[1])!;

    await user.cancelTasks(first.network, [only.task, shared.task]);
    const { leases } = await compute.heartbeat(id);
    expect(leases).toEqual([{ task: shared.task, leaseToken: shared.leaseToken }]);
    expect((await user.getTask(only.task)).status).toBe('waiting');
    expect((await user.taskAttempts(only.task))[0]).toMatchObject({
      outcome: 'revoked',
      reason: `cancelled from network ${first.network}`,
    });
    expect((await user.taskAttempts(shared.task))[0]!.outcome).toBeNull();
    expect((await compute.submitResult(shared.task, shared.leaseToken, 'ok', Buffer.from('{}'))).status).toBe(
      'complete',
    );
    // Not on any hub any more: nothing to claim.
    expect(await compute.claim(id, { count: 1 })).toEqual([]);
  });

  it('setting a network inactive revokes the leases of its running tasks', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('inactive');
    const claims = await compute.claim(id, { count: 3 });
    await user.setNetworkState([network], 'inactive');
    expect((await compute.heartbeat(id)).leases).toEqual([]);
    const details = await user.taskDetails(tasks);
    for (const d of details) {
      expect(d.result).toMatchObject({ status: 'waiting', lastOutcome: 'revoked', leaseHolder: null });
      expect(d.result!.attempts[0]!.reason).toBe(`network ${network} was set inactive`);
    }
    for (const c of claims) {
      await expect(compute.submitResult(c.task, c.leaseToken, 'ok', Buffer.from('{}'))).rejects.toMatchObject(
        {
          code: 'stale_lease',
        },
      );
    }
    // Active again: the tasks are claimable, under new leases and new attempts.
    await user.setNetworkState([network], 'active');
    const again = await compute.claim(id, { count: 3 });
    expect(again.map((c) => c.task).sort()).toEqual([...tasks].sort());
    expect((await user.taskAttempts(tasks[0]!)).map((a) => a.outcome)).toEqual(['revoked', null]);
  });
});
