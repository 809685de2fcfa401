import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { ComputeService } from '../../src/compute/compute-service.js';
import { sweep } from '../../src/service/sweep.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

const text = async (stream: Readable) => Buffer.concat(await stream.toArray()).toString('utf8');

/** A pass-through proxy in front of `target` that records each request's method and path. */
async function recordingProxy(target: string) {
  const seen: string[] = [];
  const upstream = new URL(target);
  const proxy = http.createServer((request, response) => {
    seen.push(`${request.method} ${request.url?.split('?')[0]}`);
    const forwarded = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: request.url,
        method: request.method,
        headers: request.headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((resolve) => proxy.close(() => resolve())) };
}

describeEachBackend('compute API exchange', (backend) => {
  const dir = tempDir();

  it('lands the live results, refuses the stale one by itself, and claims the next tasks in the same request', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { tasks } = await networkWithTasks(user, { count: 6 });
    const { id } = await compute.register('batch');
    const first = await compute.claim(id, { count: 3 });
    expect(first).toHaveLength(3);
    const [a, b, c] = first as [(typeof first)[0], (typeof first)[0], (typeof first)[0]];
    const answer = await compute.exchange(id, {
      results: [
        { task: a.task, leaseToken: a.leaseToken, outcome: 'ok', body: Buffer.from('result a') },
        { task: b.task, leaseToken: b.leaseToken + 1, outcome: 'ok', body: Buffer.from('forged b') },
        { task: c.task, leaseToken: c.leaseToken, outcome: 'ok', body: Buffer.from([0, 255, 1]) },
      ],
      claim: { count: 2 },
    });
    expect(answer.results.map((r) => [r.task, r.result?.status ?? r.error?.code])).toEqual([
      [a.task, 'complete'],
      [b.task, 'stale_lease'],
      [c.task, 'complete'],
    ]);
    expect(answer.results[1]!.error?.status).toBe(409);
    expect(answer.claims).toHaveLength(2);
    const claimedBefore = new Set(first.map((x) => x.task));
    for (const claim of answer.claims) expect(claimedBefore.has(claim.task)).toBe(false);
    expect(new Set([...claimedBefore, ...answer.claims.map((x) => x.task)]).size).toBe(5);
    expect(tasks).toEqual(expect.arrayContaining(answer.claims.map((x) => x.task)));

    expect((await user.getTask(a.task)).status).toBe('complete');
    expect((await user.getTask(c.task)).status).toBe('complete');
    const [stored] = await user.taskResults(c.task);
    expect([...Buffer.concat(await (await user.downloadResult(stored!.id)).toArray())]).toEqual([0, 255, 1]);
    expect(await text(await user.downloadResult((await user.taskResults(a.task))[0]!.id))).toBe('result a');
    // The refused one changed nothing: still running under its lease, no result, attempt open.
    expect((await user.getTask(b.task)).status).toBe('running');
    expect(await user.taskResults(b.task)).toEqual([]);
    const attempts = await user.taskAttempts(a.task);
    expect(attempts).toMatchObject([{ outcome: 'ok', result: answer.results[0]!.result!.result }]);
    expect((await user.taskAttempts(b.task))[0]).toMatchObject({ outcome: null, endedAt: null });
    // The claimed tasks have open attempts recorded with the claim.
    const [opened] = await user.taskAttempts(answer.claims[0]!.task);
    expect(opened).toMatchObject({ attempt: 1, outcome: null, computeService: id });
    // Its true holder can still report it.
    const late = await compute.exchange(id, {
      results: [{ task: b.task, leaseToken: b.leaseToken, outcome: 'ok', body: Buffer.from('real b') }],
    });
    expect(late.results[0]!.result?.status).toBe('complete');
    expect(late.claims).toEqual([]);
  });

  it('answers a result sent again with the stored result, recorded once; an expired lease is refused', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('again');
    const [one, two] = await compute.claim(id, { count: 2 });
    const report = {
      task: one!.task,
      leaseToken: one!.leaseToken,
      outcome: 'ok' as const,
      body: Buffer.from('x'),
    };
    const firstAnswer = await compute.exchange(id, { results: [report] });
    const secondAnswer = await compute.exchange(id, { results: [report, report] });
    expect(secondAnswer.results.map((r) => r.result?.result)).toEqual([
      firstAnswer.results[0]!.result!.result,
      firstAnswer.results[0]!.result!.result,
    ]);
    expect(await user.taskResults(one!.task)).toHaveLength(1);
    // Past the lease (2 min) but not the registration: the second lease is gone.
    await sweep(server.store, Date.now() + 150_000);
    const expired = await compute.exchange(id, {
      results: [{ task: two!.task, leaseToken: two!.leaseToken, outcome: 'ok', body: Buffer.from('late') }],
    });
    expect(expired.results[0]!.error?.code).toBe('stale_lease');
    expect(await user.taskResults(two!.task)).toEqual([]);
    expect((await user.getTask(two!.task)).status).toBe('waiting');
  });

  it('records a failure with its error text and refuses a task outside the caller’s scopes as not found', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const outsider = await queueClients(server, 'other-camp-*');
    await networkWithTasks(user, { count: 1 });
    const { id } = await compute.register('fails');
    const [claim] = await compute.claim(id, { count: 1 });
    const { id: otherId } = await outsider.compute.register('outsider');
    const answer = await outsider.compute.exchange(otherId, {
      results: [{ task: claim!.task, leaseToken: claim!.leaseToken, outcome: 'ok', body: Buffer.from('no') }],
    });
    expect(answer.results[0]!.error).toMatchObject({ code: 'not_found', status: 404 });
    const failed = await compute.exchange(id, {
      results: [
        {
          task: claim!.task,
          leaseToken: claim!.leaseToken,
          outcome: 'failed',
          body: Buffer.from('ValueError: bad input'),
        },
      ],
    });
    expect(failed.results[0]!.result?.status).toBe('error');
    const task = await user.getTask(claim!.task);
    expect(task.status).toBe('error');
    expect((await user.taskAttempts(claim!.task))[0]).toMatchObject({ outcome: 'failed' });
    const [result] = await user.taskResults(claim!.task);
    expect(await text(await user.downloadResult(result!.id))).toBe('ValueError: bad input');
  });

  it('refuses a malformed batch whole with 400 and lands none of it', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute, computeCredentials } = await queueClients(server);
    await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('bad');
    const [one, two] = await compute.claim(id, { count: 2 });
    const token = await server.token('compute', computeCredentials.identifier, computeCredentials.key);
    const path = `/compute/v1/services/${id}/exchange`;
    const both = await call(server.url, token, 'POST', path, {
      results: [
        { task: one!.task, leaseToken: one!.leaseToken, outcome: 'ok', text: 'fine' },
        { task: two!.task, leaseToken: two!.leaseToken, outcome: 'ok', text: 'a', base64: 'YQ==' },
      ],
    });
    expect(both.status).toBe(400);
    expect(both.body).toMatchObject({ error: { code: 'validation_failed' } });
    expect((both.body as { error: { message: string } }).error.message).toContain('body/results/1');
    const unknownOutcome = await call(server.url, token, 'POST', path, {
      results: [{ task: one!.task, leaseToken: one!.leaseToken, outcome: 'done', text: 'x' }],
    });
    expect(unknownOutcome.status).toBe(400);
    const notBase64 = await call(server.url, token, 'POST', path, {
      results: [{ task: one!.task, leaseToken: one!.leaseToken, outcome: 'ok', base64: 'not base64!' }],
    });
    expect(notBase64.status).toBe(400);
    // A lease token past the column's 32 bits can match no lease: 400 on every route taking one,
    // not a database error.
    const huge = 2 ** 40;
    for (const [method, route, body] of [
      ['POST', path, { results: [{ task: one!.task, leaseToken: huge, outcome: 'ok', text: 'x' }] }],
      ['POST', `/compute/v1/tasks/${one!.task}/release`, { leaseToken: huge }],
      ['POST', `/compute/v1/services/${id}/heartbeat`, { leases: [{ task: one!.task, leaseToken: huge }] }],
    ] as const) {
      const answer = await call(server.url, token, method, route, body);
      expect(answer.status, `${route}: ${answer.text}`).toBe(400);
    }
    expect(await user.taskResults(one!.task)).toEqual([]);
    expect((await user.getTask(one!.task)).status).toBe('running');
    expect((await user.getTask(two!.task)).status).toBe('running');
  });

  it('compute run reports small results with its next claim and streams a large one', async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user, {
      count: 12,
      inputs: (i) => ({ i, large: i === 5 }),
    });
    const proxy = await recordingProxy(server.url);
    const large = 'y'.repeat(200_000);
    const service = new ComputeService({
      ...computeCredentials,
      url: proxy.url,
      concurrency: 3,
      claimWaitMs: 200,
      protocols: new Map([
        ['echo', async (inputs: unknown) => ((inputs as { large: boolean }).large ? large : inputs)],
      ]),
    });
    const running = service.start();
    const deadline = Date.now() + 20_000;
    while (((await user.networkStatus(network)).complete ?? 0) < 12) {
      if (Date.now() > deadline) throw new Error('the tasks did not complete');
      await new Promise((r) => setTimeout(r, 100));
    }
    await service.stop();
    await running;
    await proxy.close();
    expect(service.completed).toBe(12);
    for (const [i, task] of tasks.entries()) {
      const [result] = await user.taskResults(task);
      const bytes = await text(await user.downloadResult(result!.id));
      expect(bytes).toBe(i === 5 ? large : JSON.stringify({ i, large: false }));
    }
    const puts = proxy.seen.filter((line) => line.startsWith('PUT ') && line.endsWith('/result'));
    expect(puts).toEqual([`PUT /compute/v1/tasks/${tasks[5]}/result`]);
    expect(proxy.seen.filter((line) => line.endsWith('/exchange')).length).toBeGreaterThan(0);
  });
});
