import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { UserClient } from '../../src/client/user-client.js';
import type { EventView } from '../../src/domain/event-types.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { until } from '../helpers/until.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

/** Reads an SSE stream until `count` events arrived; answers them and closes the connection. */
function readStream(url: string, token: string, count: number, lastEventId?: number): Promise<EventView[]> {
  return new Promise((resolve, reject) => {
    const events: EventView[] = [];
    const request = http.get(
      `${url}/v1/events`,
      {
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'text/event-stream',
          ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }),
        },
      },
      (response) => {
        if (response.statusCode !== 200) return reject(new Error(`HTTP ${response.statusCode}`));
        expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
        let buffered = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          buffered += chunk;
          let end: number;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const id = /^id: (\d+)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (id && data) {
              const event = JSON.parse(data) as EventView;
              expect(event.id).toBe(Number(id));
              events.push(event);
              if (events.length === count) {
                request.destroy();
                resolve(events);
              }
            }
          }
        });
      },
    );
    request.on('error', (error) => (events.length >= count ? undefined : reject(error)));
  });
}

describeEachBackend('event log', (backend) => {
  const dir = tempDir();

  it('records results, failures and invalidations in order, each user seeing only their scopes', async () => {
    const server = await startTestServer(backend, dir, { eventsIntervalMs: 50 });
    const a = await queueClients(server, 'orga-camp-*');
    const b = await queueClients(server, 'orgb-camp-*');
    const netA = await networkWithTasks(a.user, { scope: 'orga-camp-p', count: 3 });
    const netB = await networkWithTasks(b.user, { scope: 'orgb-camp-p', count: 2 });

    const { id: serviceA } = await a.compute.register('a');
    const claims = await a.compute.claim(serviceA, { count: 3 });
    expect(claims).toHaveLength(3);
    await a.compute.submitResult(claims[0]!.task, claims[0]!.leaseToken, 'ok', Buffer.from('{"v":1}'));
    await a.compute.submitResult(claims[1]!.task, claims[1]!.leaseToken, 'failed', Buffer.from('boom'));
    await a.compute.release(claims[2]!.task, claims[2]!.leaseToken);
    await a.user.setTaskStatus([claims[2]!.task], 'invalid');
    const { id: serviceB } = await b.compute.register('b');
    for (const claim of await b.compute.claim(serviceB, { count: 2 }))
      await b.compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from('{}'));

    const tokenA = await server.token('user', a.userCredentials.identifier, a.userCredentials.key);
    const tokenB = await server.token('user', b.userCredentials.identifier, b.userCredentials.key);
    // network.finished follows the last task event of each network once it is numbered.
    let seenA: EventView[] = [];
    await until(
      'the expected state',
      async () => {
        seenA = (await a.user.events()).events;
        return seenA.some((e) => e.type === 'network.finished');
      },
      20_000,
    );
    expect(seenA.map((e) => e.type)).toEqual([
      'network.submitted',
      'task.complete',
      'task.error',
      'task.invalid',
      'network.finished',
    ]);
    expect(seenA.every((e) => e.scope === 'orga-camp-p')).toBe(true);
    expect(seenA[1]).toMatchObject({ network: netA.network, subject: claims[0]!.task });
    const ids = seenA.map((e) => e.id);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);

    let seenB: EventView[] = [];
    await until(
      'the expected state',
      async () => {
        seenB = (await b.user.events()).events;
        return seenB.some((e) => e.type === 'network.finished');
      },
      20_000,
    );
    expect(seenB.map((e) => e.type)).toEqual([
      'network.submitted',
      'task.complete',
      'task.complete',
      'network.finished',
    ]);
    expect(seenB.every((e) => e.network === netB.network)).toBe(true);

    // The stream gives each user the same events as the pages, and nothing of the other's.
    const streamA = await readStream(server.url, tokenA, seenA.length);
    expect(streamA).toEqual(seenA);
    const streamB = await readStream(server.url, tokenB, seenB.length);
    expect(streamB).toEqual(seenB);

    // Resuming after the second event: the rest, none missed and none repeated, then new ones.
    const resumed = readStream(server.url, tokenA, seenA.length - 2 + 1, seenA[1]!.id);
    await a.user.setNetworkState([netA.network], 'inactive');
    const rest = await resumed;
    expect(rest.slice(0, -1)).toEqual(seenA.slice(2));
    expect(rest.at(-1)).toMatchObject({
      type: 'network.state_changed',
      data: { from: 'active', to: 'inactive' },
    });

    // Paging with the cursor and filtering by type.
    const page = await call(server.url, tokenA, 'GET', `/v1/events?after=${seenA[0]!.id}&limit=2`);
    expect((page.body as { events: EventView[] }).events).toEqual(seenA.slice(1, 3));
    expect((page.body as { next: number }).next).toBe(seenA[2]!.id);
    const errors = await a.user.events({ type: 'task.error' });
    expect(errors.events.map((e) => e.subject)).toEqual([claims[1]!.task]);
    const bad = await call(server.url, tokenA, 'GET', '/v1/events?type=task.exploded');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('querystring/type');
    const badResume = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${tokenA}`, accept: 'text/event-stream', 'last-event-id': 'abc' },
    });
    expect(badResume.status).toBe(400);
  });

  it('refuses bad webhooks and strategies with 400 naming the field, storing nothing', async () => {
    const server = await startTestServer(backend, dir, { eventsIntervalMs: 50, webhookAllowPrivate: false });
    const { user, userCredentials } = await queueClients(server, 'org-camp-*');
    const net = await networkWithTasks(user, { scope: 'org-camp-p', count: 1 });
    const token = await server.token('user', userCredentials.identifier, userCredentials.key);
    const cases: [unknown, string][] = [
      [{ url: 'ftp://example.org/hook', scope: 'org-camp-p' }, 'body/url'],
      [{ url: 'not a url', scope: 'org-camp-p' }, 'body/url'],
      [{ url: 'http://127.0.0.1:9/hook', scope: 'org-camp-p' }, 'body/url'],
      [{ url: 'http://10.1.2.3/hook', scope: 'org-camp-p' }, 'body/url'],
      [{ url: 'http://[::1]/hook', scope: 'org-camp-p' }, 'body/url'],
      [{ url: 'http://localhost/hook', scope: 'org-camp-p' }, 'body/url'],
      [{ url: 'https://93.184.215.14/hook', scope: 'org-camp-p', events: ['task.exploded'] }, 'body/events'],
      [{ url: 'https://93.184.215.14/hook', scope: 'org-*-p' }, 'body/scope'],
    ];
    for (const [body, field] of cases) {
      const answer = await call(server.url, token, 'POST', '/v1/webhooks', body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect((answer.body as { error: { message: string } }).error.message).toContain(field);
    }
    expect(await user.listWebhooks()).toEqual([]);
    expect(await server.store.db.selectFrom('webhook_endpoints').selectAll().execute()).toEqual([]);

    const strategyCases: [unknown, string][] = [
      [{ name: 'make-coffee' }, 'body/name'],
      [{ name: 'repeat-until', params: { n: 0 } }, 'body/params/n'],
      [{ name: 'repeat-until', params: { n: 2, colour: 'red' } }, 'body/params'],
      [{ name: 'repeat-until' }, 'body/params'],
    ];
    for (const [body, field] of strategyCases) {
      const answer = await call(server.url, token, 'PUT', `/v1/networks/${net.network}/strategy`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect((answer.body as { error: { message: string } }).error.message).toContain(field);
    }
    expect(await server.store.db.selectFrom('network_strategies').selectAll().execute()).toEqual([]);
    const ensure = await call(
      server.url,
      token,
      'POST',
      `/v1/transformations/${net.transformations[0]}/tasks/ensure`,
      {
        count: -1,
      },
    );
    expect(ensure.status).toBe(400);
    expect(ensure.text).toContain('count');
  });
});

describe('event stream client', () => {
  it('is exported from the SDK', () => {
    expect(typeof UserClient.prototype.followEvents).toBe('function');
  });
});
