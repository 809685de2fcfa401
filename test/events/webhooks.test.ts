import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { expect, it } from 'vitest';
import type { EventView } from '../../src/domain/event-types.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli, startCli } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

/**
 * A webhook receiver on loopback that checks every delivery's signature with the Standard
 * Webhooks reference package, answers 500 to the first `failFirst`, and can go away and return on
 * the same port.
 */
async function startReceiver(options: { failFirst: number; delayMs?: number }) {
  let secret = '';
  const delivered: EventView[] = [];
  const badSignatures: string[] = [];
  let requests = 0;
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      requests += 1;
      try {
        const payload = new Webhook(secret).verify(body, request.headers as Record<string, string>) as {
          type: string;
          data: EventView;
        };
        if (requests <= options.failFirst) {
          response.writeHead(500).end('not yet');
          return;
        }
        setTimeout(() => {
          if (payload.type !== 'webhook.test') delivered.push(payload.data);
          response.writeHead(204).end();
        }, options.delayMs ?? 0);
      } catch (error) {
        badSignatures.push((error as Error).message);
        response.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/athanor`,
    delivered,
    badSignatures,
    requests: () => requests,
    setSecret: (s: string) => (secret = s),
    goAway: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    comeBack: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
  };
}

/** The first delivery of each event id, in arrival order. */
function firstDeliveries(delivered: readonly EventView[]): EventView[] {
  const seen = new Set<number>();
  return delivered.filter((e) => !seen.has(e.id) && Boolean(seen.add(e.id)));
}

describeEachBackend('webhooks', (backend) => {
  const dir = tempDir();
  const settings = {
    eventsIntervalMs: 50,
    webhookAllowPrivate: true,
    webhookRetryBaseMs: 100,
    webhookRetryMaxMs: 800,
    webhookTimeoutMs: 2000,
  };

  it('delivers every event signed, at least once and in order, through failures, an outage and a restart', async () => {
    let server = await startTestServer(backend, dir, settings);
    const store = server.store;
    const { user, compute, userCredentials } = await queueClients(server, 'org-camp-*');
    const receiver = await startReceiver({ failFirst: 3, delayMs: 5 });
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const added = await runCli(['webhook', 'add', '--url', receiver.url, '--scope', 'org-camp-*', '--json'], {
      env,
    });
    expect(added.code, added.stderr).toBe(0);
    const hook = JSON.parse(added.stdout) as { id: string; secret: string; state: string };
    expect(hook.secret).toMatch(/^whsec_/);
    expect(hook.state).toBe('active');
    receiver.setSecret(hook.secret);
    const listed = await runCli(['webhook', 'list', '--json'], { env });
    expect(listed.stdout).not.toContain(hook.secret);

    const completeAll = async (network: { tasks: readonly string[] }) => {
      const { id } = await compute.register('w');
      for (const claim of await compute.claim(id, { count: network.tasks.length }))
        await compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from('{}'));
    };
    const first = await networkWithTasks(user, { name: 'one', count: 4 });
    const second = await networkWithTasks(user, { name: 'two', count: 3 });
    await completeAll(first);
    await until('the expected state', () => receiver.delivered.length >= 3, 30_000);

    // The receiver goes away while more events happen, then returns on the same port.
    await receiver.goAway();
    await completeAll(second);
    await new Promise((r) => setTimeout(r, 1500));
    await receiver.comeBack();

    // The server restarts while deliveries are under way: none is lost.
    await until('the expected state', () => receiver.delivered.length >= 6, 30_000);
    await server.close();
    server = await startTestServer(backend, dir, { ...settings, store });
    const again = await queueClients(server, 'org-camp-*');
    const third2 = await networkWithTasks(again.user, { name: 'three', count: 2 });
    const { id: service } = await again.compute.register('w2');
    for (const claim of await again.compute.claim(service, { count: 2 }))
      await again.compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from('{}'));

    const all = async () => (await again.user.events({ limit: 1000 })).events;
    await until(
      'the expected state',
      async () => {
        const expected = await all();
        return (
          expected.some((e) => e.network === third2.network && e.type === 'network.finished') &&
          firstDeliveries(receiver.delivered).length >= expected.length
        );
      },
      60_000,
    );
    const expected = await all();
    const got = firstDeliveries(receiver.delivered);
    expect(receiver.badSignatures).toEqual([]);
    expect(new Set(got.map((e) => e.id))).toEqual(new Set(expected.map((e) => e.id)));
    for (const network of [first.network, second.network, third2.network]) {
      const ids = got.filter((e) => e.network === network).map((e) => e.id);
      expect(ids).toEqual(expected.filter((e) => e.network === network).map((e) => e.id));
    }
    expect(got.map((e) => e.id)).toEqual(expected.map((e) => e.id));

    const shown = await runCli(['webhook', 'show', hook.id, '--json', '-n', '1000'], {
      env: { ...env, ATHANOR_URL: server.url },
    });
    const log = JSON.parse(shown.stdout) as { deliveries: { outcome: string; statusCode: number | null }[] };
    expect(log.deliveries.filter((d) => d.outcome === 'failed' && d.statusCode === 500)).toHaveLength(3);
    expect(log.deliveries.some((d) => d.outcome === 'failed' && d.statusCode === null)).toBe(true);
    const tested = await runCli(['webhook', 'test', hook.id], { env: { ...env, ATHANOR_URL: server.url } });
    expect(tested.code, tested.stderr).toBe(0);
    expect(tested.stdout).toContain('delivered');
  });

  it('disables an endpoint that keeps failing, with an audit entry, and never logs its secret', async () => {
    const server = await startTestServer(backend, dir, { ...settings, webhookRetryForMs: 1500 });
    const { user } = await queueClients(server, 'org-camp-*');
    const receiver = await startReceiver({ failFirst: 1_000_000 });
    const hook = await user.addWebhook({
      url: receiver.url,
      scope: 'org-camp-p',
      events: ['network.submitted'],
    });
    receiver.setSecret(hook.secret);
    await networkWithTasks(user, { name: 'doomed' });
    await until(
      'the expected state',
      async () => (await user.getWebhook(hook.id)).state === 'disabled',
      30_000,
    );
    const disabled = await user.getWebhook(hook.id);
    expect(disabled.disabledReason).toContain('webhook enable');
    const audit = await server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('target', '=', hook.id)
      .execute();
    expect(audit.map((a) => a.action)).toEqual(['webhook.add', 'webhook.disable']);
    expect(JSON.stringify(audit)).not.toContain(hook.secret.slice(6));
    // Enabled again, it resumes at the event it stopped at.
    const before = receiver.requests();
    await user.enableWebhook(hook.id);
    await until('the expected state', () => receiver.requests() > before, 30_000);
  });
});

it('tails events from the command line', async () => {
  const dir = tempDir();
  const server = await startTestServer('sqlite', dir, { eventsIntervalMs: 50 });
  const { user, userCredentials } = await queueClients(server, 'org-camp-*');
  const tail = startCli(['events', 'tail', '--json', '--scope', 'org-camp-p'], {
    env: {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    },
  });
  const net = await networkWithTasks(user, { name: 'tailed' });
  await until('the expected state', () => tail.stdout().includes('network.submitted'), 30_000);
  tail.child.kill('SIGTERM');
  const done = await tail.done;
  expect(JSON.parse(done.stdout.trim().split('\n')[0]!)).toMatchObject({
    type: 'network.submitted',
    network: net.network,
  });
});
