import { request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { networkKey } from '../../src/domain/keys.js';
import { parseScope } from '../../src/domain/scope.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { call, startTestServer } from '../helpers/server.js';
import { freshStore } from '../helpers/store.js';

/** JSON text nesting `{"a":[` `levels` times: written out, since JSON.stringify would overflow too. */
const nested = (levels: number) => `${'{"a":['.repeat(levels)}1${']}'.repeat(levels)}`;

/** POSTs a prepared JSON body: the client adds no work of its own to the event loop it shares. */
function postBytes(url: string, token: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sent = request(
      url,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    sent.on('error', reject);
    sent.end(body);
  });
}

describeEachBackend('request limits', (backend) => {
  const dir = tempDir();

  it('refuses too deep, too large and too many with 400/413 and a message naming the setting; stores nothing', async () => {
    const server = await startTestServer(backend, dir, { maxNetworkTransformations: 10, maxJsonDepth: 64 });
    await server.addIdentity('user', 'alice', ['org-camp-*']);
    const token = await server.token('user', 'alice', 'alice-key-0123456789');
    const submit = (transformations: unknown[]) =>
      call(server.url, token, 'POST', '/v1/networks', { scope: 'org-camp-p', name: 'n', transformations });
    const one = (inputs: unknown) => [{ name: 't', protocol: 'echo', inputs }];
    const submitInputs = (inputsText: string) =>
      call(
        server.url,
        token,
        'POST',
        '/v1/networks',
        `{"scope":"org-camp-p","name":"n","transformations":[{"name":"t","protocol":"echo","inputs":${inputsText}}]}`,
      );

    // 10,000 levels answered 500 (a stack overflow in canonical JSON) before the depth limit.
    const deep = await submitInputs(nested(5000));
    expect(deep.status).toBe(400);
    expect(deep.body).toMatchObject({ error: { code: 'validation_failed' } });
    expect(deep.text).toContain('ATHANOR_MAX_JSON_DEPTH');
    // Each level of nested() is two JSON levels; the body adds three (body, transformations, item): 63, then 65.
    expect((await submitInputs(nested(30))).status).toBe(200);
    expect((await submitInputs(nested(31))).status).toBe(400);

    const huge = await submit(one('x'.repeat(15_000_000)));
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ error: { code: 'limit_exceeded' } });
    expect(huge.text).toContain('ATHANOR_MAX_INPUTS_BYTES');

    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `t${i}`, protocol: 'echo', inputs: i }));
    const tooMany = await submit(many(11));
    expect(tooMany.status).toBe(413);
    expect(tooMany.text).toContain('at most 10 per network');
    expect((await submit(many(10))).status).toBe(200);

    const listed = await call(server.url, token, 'GET', '/v1/networks');
    expect((listed.body as unknown[]).length).toBe(2);
    const transformations = await server.store.db.selectFrom('transformations').select('name').execute();
    expect(transformations.length).toBe(11);
  });

  it('holds the event loop well under 400 ms at a time while it stores a network of 100,000 transformations', async () => {
    // The store `athanor serve` opens (SQLite checkpoints in a thread of their own).
    const { store } = await freshStore(backend, dir, { open: { backgroundCheckpoints: true } });
    const server = await startTestServer(backend, dir, { store });
    await server.addIdentity('user', 'bulk', ['org-camp-*']);
    const token = await server.token('user', 'bulk', 'bulk-key-0123456789');
    const count = 100_000;
    // 14 MiB, within the default 16 MiB body limit: parsing it, or copying its write-ahead log
    // into the database inside the commit, held the event loop for about a second.
    const body = Buffer.from(
      JSON.stringify({
        scope: 'org-camp-big',
        name: 'big',
        transformations: Array.from({ length: count }, (_, i) => ({
          name: `t${i}`,
          protocol: 'echo',
          inputs: { i, payload: 'x'.repeat(80) },
        })),
      }),
    );
    const stalls = monitorEventLoopDelay({ resolution: 10 });
    stalls.enable();
    let submitted = false;
    const submit = postBytes(`${server.url}/v1/networks`, token, body).finally(() => (submitted = true));
    const healthStatuses: number[] = [];
    let answeredDuringSubmit = 0;
    while (!submitted) {
      const health = await fetch(`${server.url}/healthz`);
      healthStatuses.push(health.status);
      await health.arrayBuffer();
      if (!submitted) answeredDuringSubmit++;
      await setTimeout(10);
    }
    const response = await submit;
    stalls.disable();
    expect(response.status, response.text.slice(0, 500)).toBe(200);
    // Everything on this event loop (server and client) took turns of at most this long.
    expect(stalls.max / 1e6).toBeLessThan(400);
    expect(answeredDuringSubmit).toBeGreaterThan(10);
    expect(new Set(healthStatuses)).toEqual(new Set([200]));
    const answer = JSON.parse(response.text) as { key: string; created: boolean; transformations: string[] };
    expect(answer.created).toBe(true);
    expect(answer.transformations.length).toBe(count);
    // Sorted and hashed in slices, the key is the one the whole network gives in one pass.
    expect(answer.key).toBe(networkKey(parseScope('org-camp-big'), 'big', answer.transformations));
    const stored = await server.store.db
      .selectFrom('network_transformations')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(count);
  }, 300_000);
});
