import { expect, it } from 'vitest';
import { ComputeService } from '../../src/compute/compute-service.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

describeEachBackend('orphaned leases', (backend) => {
  const dir = tempDir();

  it('a claim whose answer was lost returns to waiting although its service keeps heartbeating', async () => {
    const server = await startTestServer(backend, dir, { leaseTtlMs: 1500, sweepIntervalMs: 200 });
    const { user, compute, computeCredentials } = await queueClients(server);
    const { tasks } = await networkWithTasks(user);
    // A running service that claims nothing by itself (no 'echo' protocol): its only lease is the
    // one claimed below in its name, whose answer it never sees.
    const service = new ComputeService({
      ...computeCredentials,
      protocols: new Map([['not-echo', async () => null]]),
      claimWaitMs: 0,
    });
    const running = service.start();
    try {
      await until('the service to register', async () => service.serviceId !== undefined, 10_000);
      const [lost] = await compute.claim(service.serviceId!, { count: 1 });
      expect(lost?.task).toBe(tasks[0]);
      // No read of 'running' here: the service's next heartbeat (every 375 ms) may already have
      // released it. The next claim's lease token below shows this claim took place.
      // Heartbeats come every lease TTL / 4; four lease TTLs are plenty for the orphan to go back.
      await until('the orphan', async () => (await user.getTask(tasks[0]!)).status === 'waiting', 6_000);
      const { id: otherId } = await compute.register('other');
      const [again] = await compute.claim(otherId, { count: 1 });
      expect(again).toMatchObject({ task: tasks[0], leaseToken: lost!.leaseToken + 1 });
      await expect(
        compute.submitResult(lost!.task, lost!.leaseToken, 'ok', Buffer.from('orphan')),
      ).rejects.toMatchObject({ code: 'stale_lease' });
      await compute.submitResult(again!.task, again!.leaseToken, 'ok', Buffer.from('real'));
      expect((await user.taskResults(tasks[0]!)).map((r) => r.sizeBytes)).toEqual([4]);
    } finally {
      await service.stop();
      await running;
    }
  });

  it('a heartbeat extends only the leases it lists and releases the others; without a list it extends all', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('a');
    const claims = await compute.claim(id, { count: 3 });
    expect(claims).toHaveLength(3);
    const [kept, lost, alsoKept] = claims as [(typeof claims)[0], (typeof claims)[0], (typeof claims)[0]];

    const everything = await compute.heartbeat(id);
    expect(everything.leases.map((l) => l.task).sort()).toEqual([...tasks].sort());

    const listed = [kept, alsoKept].map((c) => ({ task: c.task, leaseToken: c.leaseToken }));
    // A stale token for a held task does not keep the real lease alive.
    const answer = await compute.heartbeat(id, [
      ...listed,
      { task: lost.task, leaseToken: lost.leaseToken + 7 },
    ]);
    expect(answer.leases.sort((a, b) => a.task.localeCompare(b.task))).toEqual(
      listed.sort((a, b) => a.task.localeCompare(b.task)),
    );
    expect((await user.getTask(lost.task)).status).toBe('waiting');
    expect((await user.getTask(kept.task)).status).toBe('running');
    await expect(
      compute.submitResult(lost.task, lost.leaseToken, 'ok', Buffer.from('x')),
    ).rejects.toMatchObject({
      code: 'stale_lease',
    });
    expect(await user.taskResults(lost.task)).toEqual([]);

    const { id: otherId } = await compute.register('b');
    const [again] = await compute.claim(otherId, { count: 1 });
    expect(again?.task).toBe(lost.task);
    // Another service's heartbeat with an empty list releases its own leases only.
    expect((await compute.heartbeat(otherId, [])).leases).toEqual([]);
    expect((await user.getTask(lost.task)).status).toBe('waiting');
    expect((await user.getTask(kept.task)).status).toBe('running');
    expect((await compute.heartbeat(id, [])).leases).toEqual([]);
    expect((await user.listTasks({ status: 'waiting' })).map((t) => t.id).sort()).toEqual([...tasks].sort());
  });

  it('a result sent again under the lease that stored it gets the same answer and is recorded once', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const other = (await queueClients(server)).compute;
    const { tasks } = await networkWithTasks(user);
    const { id } = await compute.register('a');
    const [claim] = await compute.claim(id, { count: 1 });
    const first = await compute.submitResult(claim!.task, claim!.leaseToken, 'ok', Buffer.from('42'));
    expect(first.status).toBe('complete');
    // Its answer was lost: the service sends it again with the same lease token.
    expect(await compute.submitResult(claim!.task, claim!.leaseToken, 'ok', Buffer.from('42'))).toEqual(
      first,
    );
    // Another outcome under that lease is not a repeat: it conflicts with the recorded result.
    await expect(
      compute.submitResult(claim!.task, claim!.leaseToken, 'failed', Buffer.from('oops')),
    ).rejects.toMatchObject({ code: 'result_conflict' });
    await expect(
      compute.submitResult(claim!.task, claim!.leaseToken + 1, 'ok', Buffer.from('42')),
    ).rejects.toMatchObject({ code: 'stale_lease' });
    await expect(
      other.submitResult(claim!.task, claim!.leaseToken, 'ok', Buffer.from('42')),
    ).rejects.toMatchObject({ code: 'stale_lease' });
    expect((await user.taskResults(tasks[0]!)).map((r) => r.id)).toEqual([first.result]);
    expect((await user.getTask(tasks[0]!)).status).toBe('complete');
  });
});
