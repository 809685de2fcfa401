import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import * as identities from '../../src/service/identities.js';
import { describeEachBackend, tempDir, testConfig } from '../helpers/backends.js';
import { call, startTestServer } from '../helpers/server.js';

/** Polls until the token is refused; returns how long that took. */
async function refusedWithin(
  url: string,
  token: string,
  path = '/v1/whoami',
  limitMs = 5000,
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs + 1000) {
    const { status } = await call(url, token, 'GET', path);
    if (status === 401) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  return Infinity;
}

describeEachBackend('authentication', (backend) => {
  const dir = tempDir();

  it('issues tokens for the OAuth2 password form and JSON; a wrong key and an unknown identity get the same 401', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'alice', ['a-b-c']);
    const form = await fetch(`${server.url}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'alice', password: key }),
    });
    expect(form.status).toBe(200);
    const body = (await form.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(body.token_type).toBe('bearer');
    expect(body.expires_in).toBe(1800);
    const whoami = await call(server.url, body.access_token, 'GET', '/v1/whoami');
    expect(whoami.body).toEqual({ kind: 'user', identifier: 'alice', scopes: ['a-b-c'] });

    const wrong = await call(server.url, undefined, 'POST', '/v1/token', {
      username: 'alice',
      password: 'not-the-key-at-all',
    });
    const unknown = await call(server.url, undefined, 'POST', '/v1/token', {
      username: 'mallory',
      password: 'not-the-key-at-all',
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.text).toBe(unknown.text);
    expect((await call(server.url, undefined, 'GET', '/v1/networks')).status).toBe(401);
    expect((await call(server.url, 'garbage', 'GET', '/v1/networks')).status).toBe(401);
  });

  it('refuses user keys on the compute API and compute keys on the user API', async () => {
    const server = await startTestServer(backend, dir);
    const userKey = await server.addIdentity('user', 'ursula', ['a-b-c']);
    const computeKey = await server.addIdentity('compute', 'cluster', ['a-b-c']);
    expect(
      (
        await call(server.url, undefined, 'POST', '/compute/v1/token', {
          username: 'ursula',
          password: userKey,
        })
      ).status,
    ).toBe(401);
    expect(
      (await call(server.url, undefined, 'POST', '/v1/token', { username: 'cluster', password: computeKey }))
        .status,
    ).toBe(401);
    const userToken = await server.token('user', 'ursula', userKey);
    const computeToken = await server.token('compute', 'cluster', computeKey);
    expect((await call(server.url, userToken, 'GET', '/compute/v1/whoami')).status).toBe(401);
    expect((await call(server.url, computeToken, 'GET', '/v1/whoami')).status).toBe(401);
    expect((await call(server.url, computeToken, 'GET', '/compute/v1/whoami')).status).toBe(200);
  });

  it('refuses disabled and expired identities at the token route', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'dora', ['a-b-c']);
    await identities.setIdentityDisabled(server.store, 'test', { kind: 'user', identifier: 'dora' }, true);
    expect(
      (await call(server.url, undefined, 'POST', '/v1/token', { username: 'dora', password: key })).status,
    ).toBe(401);
    await identities.setIdentityDisabled(server.store, 'test', { kind: 'user', identifier: 'dora' }, false);
    await identities.setIdentityExpiry(
      server.store,
      'test',
      { kind: 'user', identifier: 'dora' },
      '2001-01-01T00:00:00Z',
      { allowPast: true },
    );
    expect(
      (await call(server.url, undefined, 'POST', '/v1/token', { username: 'dora', password: key })).status,
    ).toBe(401);
  });

  it.each([
    [
      'set-key',
      (s: Parameters<typeof identities.setIdentityKey>[0], ref: identities.IdentityRef) =>
        identities.setIdentityKey(s, 'test', ref, 'a-brand-new-key-000'),
    ],
    [
      'disable',
      (s: Parameters<typeof identities.setIdentityKey>[0], ref: identities.IdentityRef) =>
        identities.setIdentityDisabled(s, 'test', ref, true),
    ],
    [
      'remove',
      (s: Parameters<typeof identities.setIdentityKey>[0], ref: identities.IdentityRef) =>
        identities.removeIdentity(s, 'test', ref),
    ],
    [
      'expiry',
      (s: Parameters<typeof identities.setIdentityKey>[0], ref: identities.IdentityRef) =>
        identities.setIdentityExpiry(s, 'test', ref, new Date(Date.now() + 300).toISOString()),
    ],
  ])('revokes tokens already issued within 5 s after %s', async (_name, change) => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'rita', ['a-b-c']);
    const token = await server.token('user', 'rita', key);
    expect((await call(server.url, token, 'GET', '/v1/whoami')).status).toBe(200);
    await change(server.store, { kind: 'user', identifier: 'rita' });
    expect(await refusedWithin(server.url, token)).toBeLessThanOrEqual(5000);
  });

  it('applies a scope change to tokens already issued within 5 s', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'sam', ['a-b-c']);
    const token = await server.token('user', 'sam', key);
    const submit = {
      scope: 'x-y-z',
      name: 'n',
      transformations: [{ name: 't', protocol: 'echo', inputs: {} }],
    };
    expect((await call(server.url, token, 'POST', '/v1/networks', submit)).status).toBe(403);
    await identities.addIdentityScopes(server.store, 'test', { kind: 'user', identifier: 'sam' }, ['x-y-z']);
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 6000 && status !== 200) {
      status = (await call(server.url, token, 'POST', '/v1/networks', submit)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect(Date.now() - started).toBeLessThanOrEqual(5000);
  });

  it('two servers on one database, and a restarted server, accept the same tokens', async () => {
    const first = await startTestServer(backend, dir);
    const key = await first.addIdentity('user', 'tom', ['a-b-c']);
    const token = await first.token('user', 'tom', key);
    const second = await startTestServer(backend, dir, { store: first.store });
    expect((await call(second.url, token, 'GET', '/v1/whoami')).status).toBe(200);
    await first.close();
    const restarted = await buildApp({
      store: first.store,
      config: testConfig('sqlite::memory:', dir),
      logger: false,
    });
    const response = await restarted.inject({
      method: 'GET',
      url: '/v1/whoami',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.statusCode).toBe(200);
    await restarted.close();
  });

  it('rate limits the token route', async () => {
    const server = await startTestServer(backend, dir, { tokenRateLimit: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(
        (await call(server.url, undefined, 'POST', '/v1/token', { username: 'x', password: 'y' })).status,
      );
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
  });
});

describe('tokens', () => {
  it('are refused after they expire', async () => {
    const { TokenSigner } = await import('../../src/auth/tokens.js');
    const signer = new TokenSigner('x'.repeat(40));
    const stamp = new Date().toISOString();
    const token = await signer.issue('user', 'alice', 60, stamp, Date.now() - 120_000);
    await expect(signer.verify(token, 'user')).rejects.toThrow(/expired/);
    const other = new TokenSigner('y'.repeat(40));
    await expect(other.verify(await signer.issue('user', 'alice', 60, stamp), 'user')).rejects.toMatchObject({
      code: 'unauthenticated',
    });
    expect(() => new TokenSigner('short')).toThrow(/at least 32/);
  });
});
