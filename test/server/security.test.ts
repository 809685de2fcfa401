import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { audienceFor } from '../../src/auth/tokens.js';
import * as identities from '../../src/service/identities.js';
import { listAuditEntries } from '../../src/store/queries/audit.js';
import { findIdentity } from '../../src/store/queries/identities.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

const jwtSecret = 'a-test-signing-secret-of-forty-characters!';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds until `/healthz` answers, polled while `work` runs; the slowest answer wins. */
async function slowestHealthz(url: string, work: Promise<unknown>): Promise<number> {
  let done = false;
  void work.finally(() => (done = true)).catch(() => {});
  let slowest = 0;
  while (!done) {
    const started = performance.now();
    const response = await fetch(`${url}/healthz`);
    await response.text();
    slowest = Math.max(slowest, performance.now() - started);
  }
  await work;
  return slowest;
}

describeEachBackend('security', (backend) => {
  const dir = tempDir();

  it('matches restart patterns in linear time: (a+)+$ against 40 a and ! leaves /healthz answering', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network, tasks } = await networkWithTasks(user, { count: 2 });
    await user.addRestartPolicies(network, [{ pattern: '(a+)+$', maxRetries: 3 }]);
    const service = await compute.register('redos');
    const claims = await compute.claim(service.id, { count: 2 });
    expect(claims).toHaveLength(2);
    const byTask = new Map(claims.map((c) => [c.task, c]));
    const evil = byTask.get(tasks[0]!)!;
    const plain = byTask.get(tasks[1]!)!;

    const submission = compute.submitResult(
      evil.task,
      evil.leaseToken,
      'failed',
      Buffer.from(`${'a'.repeat(40)}!`),
    );
    // A backtracking engine needs hours here; RE2 needs microseconds. The margin keeps a busy
    // test machine from failing the test; bench/ has the measured figure.
    expect(await slowestHealthz(server.url, submission)).toBeLessThan(1000);
    // Documented semantics: the pattern is searched in the text; `$` needs the a's at the end.
    expect((await user.getTask(evil.task)).status).toBe('error');
    await compute.submitResult(
      plain.task,
      plain.leaseToken,
      'failed',
      Buffer.from(`boom: ${'a'.repeat(40)}`),
    );
    const retried = await user.getTask(plain.task);
    expect(retried.status).toBe('waiting');
    expect(retried.restarts).toBe(1);
  });

  it('refuses restart patterns RE2 cannot run in linear time with 400, keeping the policies', async () => {
    const server = await startTestServer(backend, dir);
    const { user } = await queueClients(server);
    const { network } = await networkWithTasks(user);
    for (const pattern of ['(a)\\1', '(?=a)b', '(unclosed']) {
      await expect(user.addRestartPolicies(network, [{ pattern, maxRetries: 1 }])).rejects.toMatchObject({
        code: 'validation_failed',
        details: { status: 400 },
        message: expect.stringContaining('RE2'),
      });
    }
    expect(await user.restartPolicies(network)).toEqual([]);
  });

  it('leaves no token valid 5 s after a key rotation raced by 50 token requests', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'racer', ['a-b-c']);
    const requests = Array.from({ length: 50 }, () =>
      call(server.url, undefined, 'POST', '/v1/token', { username: 'racer', password: key }),
    );
    // Rotate once the first token is out: the other requests are still verifying the old key.
    await Promise.race(requests);
    await identities.setIdentityKey(
      server.store,
      'test',
      { kind: 'user', identifier: 'racer' },
      'the-rotated-key-0123456789',
    );
    const rotatedAt = Date.now();
    const answers = await Promise.all(requests);
    const tokens = answers
      .filter((a) => a.status === 200)
      .map((a) => (a.body as { access_token: string }).access_token);
    await sleep(Math.max(0, rotatedAt + 5000 - Date.now()));
    const statuses = await Promise.all(
      tokens.map(async (t) => (await call(server.url, t, 'GET', '/v1/whoami')).status),
    );
    expect(tokens.length).toBeGreaterThan(0);
    // …and none of their tokens outlives it.
    expect(statuses.filter((s) => s !== 401)).toEqual([]);
  }, 30_000);

  it('refuses tokens without exp, with an expired exp, from the future or signed with another secret', async () => {
    const server = await startTestServer(backend, dir, { jwtSecret });
    await server.addIdentity('user', 'forger', ['a-b-c']);
    const row = await findIdentity(server.store.db, 'user', 'forger');
    const nowS = Math.floor(Date.now() / 1000);
    const forge = async (
      claims: { iat?: number; exp?: number; iatMs?: number },
      secret = jwtSecret,
    ): Promise<string> => {
      const jwt = new SignJWT({
        kind: 'user',
        iat_ms: claims.iatMs ?? Date.now(),
        cred: row!.credentials_changed_at,
      })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject('forger')
        .setAudience(audienceFor('user'))
        .setIssuer('athanor');
      if (claims.iat !== undefined) jwt.setIssuedAt(claims.iat);
      if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
      return jwt.sign(new TextEncoder().encode(secret));
    };
    const whoami = async (token: string) => (await call(server.url, token, 'GET', '/v1/whoami')).status;
    // The control: a well-formed token with these claims works.
    expect(await whoami(await forge({ iat: nowS, exp: nowS + 600 }))).toBe(200);
    expect(await whoami(await forge({ iat: nowS }))).toBe(401);
    expect(await whoami(await forge({ exp: nowS + 600 }))).toBe(401);
    expect(await whoami(await forge({ iat: nowS - 1200, exp: nowS - 600 }))).toBe(401);
    expect(await whoami(await forge({ iat: nowS + 3600, exp: nowS + 7200 }))).toBe(401);
    expect(
      await whoami(await forge({ iat: nowS, exp: nowS + 600, iatMs: Date.now() + 10 * 365 * 86_400_000 })),
    ).toBe(401);
    expect(
      await whoami(await forge({ iat: nowS, exp: nowS + 600 }, 'another-secret-of-at-least-32-characters')),
    ).toBe(401);
  });

  it('serves no scope label on /metrics without the metrics token', async () => {
    const metricsToken = 'metrics-token-0123456789abcdef';
    const server = await startTestServer(backend, dir, { metricsToken });
    const { user } = await queueClients(server);
    await networkWithTasks(user, { scope: 'org-camp-secretproject', count: 2 });
    const open = await call(server.url, undefined, 'GET', '/metrics');
    expect(open.status).toBe(200);
    expect(open.text).not.toContain('scope=');
    expect(open.text).not.toContain('secretproject');
    expect(open.text).toMatch(/athanor_tasks_by_status\{status="waiting"\} 2/);
    const wrong = await call(server.url, 'not-the-metrics-token', 'GET', '/metrics');
    expect(wrong.text).not.toContain('secretproject');
    const scraped = await call(server.url, metricsToken, 'GET', '/metrics');
    expect(scraped.text).toMatch(/athanor_tasks\{scope="org-camp-secretproject",status="waiting"\} 2/);
  });

  it('refuses coerced types, unknown fields and non-finite numbers with 400 and changes nothing', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'strict', ['org-camp-*']);
    const token = await server.token('user', 'strict', key);
    const submit = (body: unknown) => call(server.url, token, 'POST', '/v1/networks', body);
    const network = {
      scope: 'org-camp-p',
      name: 'n',
      transformations: [{ name: 't', protocol: 'echo', inputs: { x: null } }],
    };
    const created = await submit(network);
    expect(created.status).toBe(200);
    const networkKey = (created.body as { key: string }).key;
    const transformation = (created.body as { transformations: string[] }).transformations[0]!;
    const stateOf = async () => (await call(server.url, token, 'GET', `/v1/networks/${networkKey}`)).body;
    const before = await stateOf();

    const refused: [string, string, unknown][] = [
      ['PUT', `/v1/networks/${networkKey}/weight`, { weight: null }],
      ['PUT', `/v1/networks/${networkKey}/weight`, { weight: ' ' }],
      ['PUT', `/v1/networks/${networkKey}/weight`, { weight: '0' }],
      ['PUT', `/v1/networks/${networkKey}/weight`, { weight: 0.5, wieght: 0 }],
      ['POST', '/v1/networks/state', { networks: [networkKey], state: ['deleted'] }],
      ['POST', '/v1/networks/state', { networks: networkKey, state: 'deleted' }],
      ['POST', `/v1/transformations/${transformation}/tasks`, { count: 1, priorty: 5 }],
      ['POST', `/v1/transformations/${transformation}/tasks`, { count: '1' }],
      ['POST', '/v1/networks', { ...network, name: 123 }],
      ['POST', '/v1/networks', { ...network, scpoe: 'org-camp-q' }],
    ];
    for (const [method, path, body] of refused) {
      const response = await call(server.url, token, method, path, body);
      expect({ path, body, status: response.status }).toEqual({ path, body, status: 400 });
      expect(response.body).toMatchObject({ error: { code: 'validation_failed' } });
    }
    const infinite = await submit(
      '{"scope":"org-camp-p","name":"n","transformations":[{"name":"t","protocol":"echo","inputs":{"x":1e999}}]}',
    );
    expect(infinite.status).toBe(400);
    expect(infinite.body).toMatchObject({ error: { code: 'validation_failed' } });
    expect(await stateOf()).toEqual(before);
    const listed = await call(server.url, token, 'GET', '/v1/networks');
    expect((listed.body as unknown[]).length).toBe(1);
    const taskList = await call(server.url, token, 'GET', '/v1/tasks');
    expect(taskList.body).toEqual([]);
    // Large finite numbers still work.
    expect(
      (
        await submit({
          ...network,
          transformations: [{ name: 't2', protocol: 'echo', inputs: { x: 1e300 } }],
        })
      ).status,
    ).toBe(200);
  });

  it('answers malformed paths and over-long parameters in the documented error shape', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'pathy', ['a-b-c']);
    const token = await server.token('user', 'pathy', key);
    const cases: [string, number, string][] = [
      ['/v1/tasks/%ZZ', 400, 'invalid_argument'],
      [`/v1/tasks/${'x'.repeat(150)}`, 404, 'not_found'],
      [`/v1/tasks/${'x'.repeat(201)}`, 400, 'validation_failed'],
      [`/v1/networks/${'x'.repeat(5000)}/status`, 400, 'validation_failed'],
    ];
    for (const [path, status, code] of cases) {
      const response = await call(server.url, token, 'GET', path);
      expect({ path: path.slice(0, 40), status: response.status }).toEqual({
        path: path.slice(0, 40),
        status,
      });
      expect(response.body).toEqual({ error: { code, message: expect.any(String) } });
    }
  });

  it('backs off wrong keys per identity and address without locking out another identity there', async () => {
    const server = await startTestServer(backend, dir, { tokenRateLimit: 100 });
    const aliceKey = await server.addIdentity('user', 'alice', ['a-b-c']);
    const bobKey = await server.addIdentity('user', 'bob', ['a-b-c']);
    const tryKey = (password: string) =>
      call(server.url, undefined, 'POST', '/v1/token', { username: 'alice', password });
    const firstFive: number[] = [];
    for (let i = 0; i < 5; i++) firstFive.push((await tryKey(`wrong-key-number-${i}`)).status);
    expect(firstFive).toEqual([401, 401, 401, 401, 401]);
    // The fifth wrong key starts a 1 s wait: even the right key is refused unchecked meanwhile,
    // with a short Retry-After that names the wait.
    const waiting = await tryKey(aliceKey);
    expect(waiting.status).toBe(429);
    expect(Number(waiting.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(waiting.headers.get('retry-after'))).toBeLessThanOrEqual(2);

    // A guesser hammering on: each further check waits 1 s, 2 s, 4 s…, and refused tries do not
    // count, so in t seconds at most about log2(t + 1) more keys are checked.
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 5; i < 60; i++) statuses.push((await tryKey(`wrong-key-number-${i}`)).status);
    const elapsedS = (Date.now() - started) / 1000;
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    const checked = statuses.filter((s) => s === 401).length;
    expect(checked).toBeLessThanOrEqual(Math.floor(Math.log2(elapsedS + 1)) + 2);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(40);

    // Bob, behind the same address, still signs in.
    expect(await server.token('user', 'bob', bobKey)).toEqual(expect.any(String));
    // Alice's right key works once her wait is over (bounded: at most a minute).
    const later = await tryKey(aliceKey);
    if (later.status === 429) {
      const retryAfter = Number(later.headers.get('retry-after'));
      expect(retryAfter).toBeLessThanOrEqual(60);
      await sleep(retryAfter * 1000 + 100);
    } else expect(later.status).toBe(200);
    expect(await server.token('user', 'alice', aliceKey)).toEqual(expect.any(String));
    const audit = await listAuditEntries(server.store.db, { limit: 100 });
    expect(audit.some((e) => e.action === 'token.backoff' && e.target === 'user:alice')).toBe(true);
  });
});

describe('request limits without a database change', () => {
  it('keeps the per-address limit for key checks spread over many identities', async () => {
    const dir = tempDir();
    const server = await startTestServer('sqlite', dir, { tokenRateLimit: 10 });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const response = await call(server.url, undefined, 'POST', '/v1/token', {
        username: `sprayed${i}`,
        password: 'a-guess-at-the-key',
      });
      statuses.push(response.status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
    const audit = await listAuditEntries(server.store.db, { limit: 100 });
    expect(audit.filter((e) => e.action === 'token.address-limited')).toHaveLength(1);
  });
});
