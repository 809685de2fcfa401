import { Readable } from 'node:stream';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { sweep } from '../../src/service/sweep.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

const text = async (stream: Readable) => Buffer.concat(await stream.toArray()).toString('utf8');

describeEachBackend('compute API', (backend) => {
  const dir = tempDir();

  it('claims, fetches, reports and downloads a result; a second claim finds nothing', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute, userCredentials, computeCredentials } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { inputs: () => ({ hello: 'world' }) });
    const { id } = await compute.register('test');
    const [claim] = await compute.claim(id, { count: 5 });
    expect(claim).toMatchObject({
      task: tasks[0],
      attempt: 1,
      transformation: { protocol: 'echo', inputs: { hello: 'world' } },
    });
    expect(await compute.claim(id, { count: 5 })).toEqual([]);
    expect((await compute.getTask(claim!.task, claim!.leaseToken)).task).toBe(claim!.task);
    const stored = await compute.submitResult(
      claim!.task,
      claim!.leaseToken,
      'ok',
      Readable.from([Buffer.from('{"answer":'), Buffer.from('42}')]),
    );
    expect(stored.status).toBe('complete');
    const [result] = await user.taskResults(claim!.task);
    expect(result).toMatchObject({ outcome: 'ok', sizeBytes: 13 });
    expect(await text(await user.downloadResult(result!.id))).toBe('{"answer":42}');
    // Both APIs stream the same bytes with the same headers; a missing result is the same 404.
    const tokens = {
      '/v1': await server.token('user', userCredentials.identifier, userCredentials.key),
      '/compute/v1': await server.token('compute', computeCredentials.identifier, computeCredentials.key),
    };
    for (const [prefix, token] of Object.entries(tokens)) {
      const download = await call(server.url, token, 'GET', `${prefix}/results/${result!.id}/download`);
      expect(download.text).toBe('{"answer":42}');
      expect(download.headers.get('content-type')).toBe('application/octet-stream');
      expect(download.headers.get('content-length')).toBe('13');
      expect(download.headers.get('x-athanor-sha256')).toBe(result!.sha256);
      const missing = await call(server.url, token, 'GET', `${prefix}/results/res-nowhere/download`);
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ error: { code: 'not_found' } });
    }
    expect((await user.getTask(claim!.task)).status).toBe('complete');
    expect(await user.networkTasks((await user.listNetworks())[0]!.key)).toEqual([]);
  });

  it('refuses a stale or foreign lease token with 409 and changes nothing', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const other = (await queueClients(server)).compute;
    await networkWithTasks(user);
    const { id } = await compute.register('a');
    const { id: otherId } = await other.register('b');
    const [claim] = await compute.claim(id, { count: 1 });
    const task = claim!.task;
    const token = claim!.leaseToken;
    await expect(compute.submitResult(task, token + 1, 'ok', Buffer.from('forged'))).rejects.toMatchObject({
      code: 'stale_lease',
    });
    await expect(other.submitResult(task, token, 'ok', Buffer.from('foreign'))).rejects.toMatchObject({
      code: 'stale_lease',
    });
    await expect(other.extendLease(task, token)).rejects.toMatchObject({ code: 'stale_lease' });
    // The lease expires and the task is claimed again: the first holder's token is now stale.
    // Past the lease (2 min) but not the registration (5 min).
    await sweep(server.store, Date.now() + 150_000);
    expect((await user.getTask(task)).status).toBe('waiting');
    const [again] = await other.claim(otherId, { count: 1 });
    expect(again?.leaseToken).toBe(token + 1);
    const late = await call(server.url, undefined, 'GET', '/healthz');
    expect(late.status).toBe(200);
    await expect(compute.submitResult(task, token, 'ok', Buffer.from('late result'))).rejects.toMatchObject({
      code: 'stale_lease',
    });
    await expect(compute.extendLease(task, token)).rejects.toMatchObject({ code: 'stale_lease' });
    expect(await user.taskResults(task)).toEqual([]);
    expect((await user.getTask(task)).status).toBe('running');
    const blobs = await server.store.db.selectFrom('results').select('blob_sha256').execute();
    expect(blobs).toEqual([]);
    await other.submitResult(task, again!.leaseToken, 'ok', Buffer.from('real'));
    expect((await user.taskResults(task)).map((r) => r.sizeBytes)).toEqual([4]);
  });

  it('releases without penalty and hands leases back on deregister', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('a');
    const claims = await compute.claim(id, { count: 3 });
    expect(claims).toHaveLength(3);
    await compute.release(claims[0]!.task, claims[0]!.leaseToken);
    expect(await user.getTask(claims[0]!.task)).toMatchObject({ status: 'waiting', attempts: 0 });
    const { released } = await compute.deregister(id);
    expect(released.sort()).toEqual(
      claims
        .slice(1)
        .map((c) => c.task)
        .sort(),
    );
    expect((await user.listTasks({ status: 'waiting' })).map((t) => t.id).sort()).toEqual([...tasks].sort());
    await expect(compute.claim(id, { count: 1 })).rejects.toMatchObject({ code: 'stale_lease' });
  });

  it('claims only from active networks with weight above zero, in the requested scopes and protocols', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const active = await networkWithTasks(user, { name: 'active', scope: 'org-camp-a' });
    const inactive = await networkWithTasks(user, { name: 'inactive', scope: 'org-camp-a' });
    const paused = await networkWithTasks(user, { name: 'paused', scope: 'org-camp-a' });
    const sleepy = await networkWithTasks(user, { name: 'sleepy', scope: 'org-camp-b', protocol: 'sleep' });
    await user.setNetworkState([inactive.network], 'inactive');
    await user.setNetworkWeight(paused.network, 0);
    const { id } = await compute.register('a');
    expect(await compute.claim(id, { count: 10, scopes: ['org-camp-b'], protocols: ['echo'] })).toEqual([]);
    const claimed = await compute.claim(id, { count: 10, protocols: ['echo'] });
    expect(claimed.map((c) => c.task)).toEqual(active.tasks);
    const sleeps = await compute.claim(id, { count: 10, scopes: ['org-camp-b'] });
    expect(sleeps.map((c) => c.task)).toEqual(sleepy.tasks);
    expect(await compute.claim(id, { count: 10 })).toEqual([]);
    await user.setNetworkState([inactive.network], 'active');
    expect((await compute.claim(id, { count: 10 })).map((c) => c.task)).toEqual(inactive.tasks);
  });

  it('long-polls: a claim with wait returns as soon as work arrives', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { id } = await compute.register('a');
    const started = Date.now();
    const waiting = compute.claim(id, { count: 1, waitMs: 10_000 });
    setTimeout(() => void networkWithTasks(user), 500);
    const claims = await waiting;
    expect(claims).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('takes the highest priority first, and spreads claims by weight (chi-square, p < 1e-6 to fail)', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { id } = await compute.register('a');
    const prio = await networkWithTasks(user, { name: 'prio', count: 10, priority: 5 });
    const urgent = prio.tasks.filter((_, i) => i % 2 === 0);
    await user.setTaskPriority(urgent, 1);
    const firstFive = await compute.claim(id, { count: 5 });
    expect(firstFive.map((c) => c.task).sort()).toEqual([...urgent].sort());
    for (const c of await compute.claim(id, { count: 5 })) await compute.release(c.task, c.leaseToken);
    for (const c of firstFive) await compute.submitResult(c.task, c.leaseToken, 'ok', Buffer.from('x'));
    await user.setNetworkState(
      (await user.listNetworks()).map((n) => n.key),
      'inactive',
    );

    // Two hubs weighted 0.8 and 0.2, many tasks each: one claim picks one hub.
    const heavy = await networkWithTasks(user, { name: 'heavy', count: 300, inputs: (i) => ({ h: i }) });
    const light = await networkWithTasks(user, { name: 'light', count: 300, inputs: (i) => ({ l: i }) });
    await user.setNetworkWeight(heavy.network, 0.8);
    await user.setNetworkWeight(light.network, 0.2);
    const heavyTasks = new Set(heavy.tasks);
    let fromHeavy = 0;
    const draws = 200;
    for (let i = 0; i < draws; i++) {
      const [c] = await compute.claim(id, { count: 1 });
      if (heavyTasks.has(c!.task)) fromHeavy++;
      await compute.release(c!.task, c!.leaseToken);
    }
    const expected = [draws * 0.8, draws * 0.2];
    const observed = [fromHeavy, draws - fromHeavy];
    const chi = observed.reduce((sum, o, i) => sum + (o - expected[i]!) ** 2 / expected[i]!, 0);
    // 23.93 is the 1 - 1e-6 quantile of chi-square with one degree of freedom: a correct spread
    // fails one run in a million, while ignoring the weights (about 100 of 200) gives about 112.
    expect(chi, `heavy hub won ${fromHeavy} of ${draws}`).toBeLessThan(23.93);
  });

  it('hands an extending task the result it extends, only once that task is complete', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network, transformations, tasks } = await networkWithTasks(user);
    const [child] = await user.createTasks(transformations[0]!, { extends: tasks[0] });
    await user.actionTasks(network, [child!.id]);
    const { id } = await compute.register('a');
    const first = await compute.claim(id, { count: 10 });
    expect(first.map((c) => c.task)).toEqual(tasks);
    await compute.submitResult(tasks[0]!, first[0]!.leaseToken, 'ok', Buffer.from('checkpoint-1'));
    const [next] = await compute.claim(id, { count: 10 });
    expect(next?.task).toBe(child!.id);
    expect(next?.extends?.task).toBe(tasks[0]);
    expect(await text(await compute.downloadResult(next!.extends!.result!))).toBe('checkpoint-1');
  });

  it('retries failures that match a restart policy, up to its limit, then leaves the hub with status error', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user);
    await user.addRestartPolicies(network, [{ pattern: 'node (lost|preempted)', maxRetries: 2 }]);
    const { id } = await compute.register('a');
    const fail = async (message: string) => {
      const [c] = await compute.claim(id, { count: 1 });
      return compute.submitResult(c!.task, c!.leaseToken, 'failed', Buffer.from(message));
    };
    expect((await fail('node lost at 03:00')).status).toBe('waiting');
    expect((await fail('node preempted')).status).toBe('waiting');
    expect((await fail('node lost again')).status).toBe('error');
    const task = await user.getTask(tasks[0]!);
    expect(task).toMatchObject({ status: 'error', restarts: 2, attempts: 3, lastError: 'node lost again' });
    expect(await user.networkTasks(network)).toEqual([]);
    expect((await user.taskResults(tasks[0]!)).map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed']);

    const other = await networkWithTasks(user, { name: 'unmatched', inputs: () => ({ u: 1 }) });
    await user.addRestartPolicies(other.network, [{ pattern: 'node lost', maxRetries: 5 }]);
    const [c] = await compute.claim(id, { count: 1 });
    expect(
      (await compute.submitResult(c!.task, c!.leaseToken, 'failed', Buffer.from('segfault'))).status,
    ).toBe('error');
  });

  it('sweeps expired registrations: their tasks return to waiting and their tokens go stale', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('a');
    const claims = await compute.claim(id, { count: 2 });
    const outcome = await sweep(server.store, Date.now() + 60 * 60_000);
    expect(outcome).toMatchObject({ leader: true, expiredServices: 1, expiredLeases: 2 });
    expect((await user.listTasks({ status: 'waiting' })).map((t) => t.id).sort()).toEqual([...tasks].sort());
    await expect(compute.heartbeat(id)).rejects.toMatchObject({ code: 'stale_lease' });
    await expect(
      compute.submitResult(claims[0]!.task, claims[0]!.leaseToken, 'ok', Buffer.from('x')),
    ).rejects.toMatchObject({
      code: 'stale_lease',
    });
  });

  it('no interleaving of claims, expiries, reclaims and late results accepts a stale result (property)', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { name: 'prop' });
    const task = tasks[0]!;
    const services = [(await compute.register('p0')).id, (await compute.register('p1')).id];
    type Op = { kind: 'claim' | 'result' | 'expire' | 'heartbeat' | 'release'; who: 0 | 1 };
    const op = fc.record({
      kind: fc.constantFrom('claim', 'result', 'expire', 'heartbeat', 'release'),
      who: fc.constantFrom(0, 1),
    }) as fc.Arbitrary<Op>;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        await server.store.db.deleteFrom('task_attempts').execute();
        await server.store.db.deleteFrom('results').execute();
        await server.store.db
          .updateTable('tasks')
          .set({ status: 'waiting', lease_service_id: null, lease_expires_at: null })
          .where('id', '=', task)
          .execute();
        for (const s of services) {
          await server.store.db
            .updateTable('compute_services')
            .set({ state: 'active', expires_at: new Date(Date.now() + 3_600_000).toISOString() })
            .where('id', '=', s)
            .execute();
        }
        const held: (number | undefined)[] = [undefined, undefined];
        let current: number | undefined;
        let accepted = 0;
        const acceptedTokens = new Set<number>();
        let claims = 0;
        for (const { kind, who } of ops) {
          const token = held[who];
          if (kind === 'claim') {
            const [c] = await compute.claim(services[who]!, { count: 1 });
            if (c) {
              held[who] = c.leaseToken;
              current = c.leaseToken;
              claims++;
            }
          } else if (kind === 'expire') {
            await server.store.db
              .updateTable('tasks')
              .set({ lease_expires_at: new Date(Date.now() - 1000).toISOString() })
              .where('id', '=', task)
              .where('status', '=', 'running')
              .execute();
            await sweep(server.store, Date.now());
            current = undefined;
          } else if (token !== undefined) {
            const call =
              kind === 'result'
                ? compute.submitResult(task, token, 'failed', Buffer.from('boom'))
                : kind === 'heartbeat'
                  ? compute.extendLease(task, token)
                  : compute.release(task, token);
            const ok = await call.then(
              () => true,
              (e: { code?: string }) => {
                expect(e.code).toBe('stale_lease');
                return false;
              },
            );
            // A result sent again under the lease whose result was accepted gets that first
            // answer (its first answer may have been lost) and records nothing new.
            const repeat = kind === 'result' && acceptedTokens.has(token);
            // Otherwise only the holder of the current lease may write; after a write the lease is gone.
            expect(ok).toBe(repeat || token === current);
            if (repeat) continue;
            if (ok && kind !== 'heartbeat') current = undefined;
            if (ok && kind === 'result') {
              accepted++;
              acceptedTokens.add(token);
            }
          }
        }
        const results = await server.store.db.selectFrom('results').select('lease_token').execute();
        expect(results).toHaveLength(accepted);
        expect(new Set(results.map((r) => r.lease_token)).size).toBe(results.length);
        // Every claim left exactly one attempt; only the current lease's is still open, and the
        // accepted results are exactly the attempts that ended `failed`, each naming its result.
        const attempts = await server.store.db.selectFrom('task_attempts').selectAll().execute();
        expect(attempts).toHaveLength(claims);
        expect(attempts.filter((a) => a.ended_at === null).map((a) => a.lease_token)).toEqual(
          current === undefined ? [] : [current],
        );
        const failed = attempts.filter((a) => a.outcome === 'failed');
        expect(failed).toHaveLength(accepted);
        expect(failed.map((a) => a.lease_token).sort()).toEqual(results.map((r) => r.lease_token).sort());
      }),
      { numRuns: 25 },
    );
  });
});
