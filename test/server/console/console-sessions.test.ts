import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { grantRole, revokeRole } from '../../../src/service/identity-roles.js';
import { setIdentityDisabled, setIdentityKey } from '../../../src/service/identities.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { ConsoleClient, csrfOf } from '../../helpers/console-client.js';
import { call, startTestServer } from '../../helpers/server.js';

/** A request with a copied session cookie, as an attacker holding it would send it. */
async function replay(url: string, cookie: string, path = '/console/tasks') {
  const response = await fetch(`${url}${path}`, {
    redirect: 'manual',
    headers: { cookie: `athanor_session=${cookie}` },
  });
  await response.text();
  return { status: response.status, location: response.headers.get('location') };
}

async function signedIn(url: string, identifier: string, key: string) {
  const browser = new ConsoleClient(url);
  expect((await browser.signIn(identifier, key)).status).toBe(303);
  const cookie = browser.cookie('athanor_session');
  expect(cookie).toBeTruthy();
  expect((await replay(url, cookie!)).status).toBe(200);
  return { browser, cookie: cookie! };
}

describeEachBackend('console sessions end on the server', (backend) => {
  const dir = tempDir();

  it('a cookie copied before sign-out is refused at once, on every replica, and is no API token', async () => {
    const server = await startTestServer(backend, dir);
    const replica = await startTestServer(backend, dir, { store: server.store });
    const key = await server.addIdentity('user', 'alice', ['lab-a-b']);
    const { browser, cookie } = await signedIn(server.url, 'alice', key);
    expect((await replay(replica.url, cookie)).status).toBe(200);
    // The cookie opens the console only: the API does not take it as a bearer token.
    expect((await call(server.url, cookie, 'GET', '/v1/whoami')).status).toBe(401);

    const out = await browser.request('POST', '/console/signout', {});
    expect(out.status).toBe(303);
    expect(browser.cookie('athanor_session')).toBeUndefined();
    for (const url of [server.url, replica.url]) {
      const again = await replay(url, cookie);
      expect(again.status).toBe(303);
      expect(again.location).toMatch(/^\/console\/signin/);
    }
    const post = await fetch(`${server.url}/console/networks`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `athanor_session=${cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'scope=lab-a-b&name=after-signout',
    });
    expect(post.status).toBe(401);
    expect(await post.text()).toContain('your session has ended');
  });

  it('an operator’s disable, key change and role withdrawal end that identity’s sessions at once, and only its', async () => {
    const server = await startTestServer(backend, dir);
    const bobKey = await server.addIdentity('user', 'bob', ['lab-a-b']);
    const carolKey = await server.addIdentity('user', 'carol', ['lab-a-b']);
    const bob = { kind: 'user' as const, identifier: 'bob' };
    const carol = await signedIn(server.url, 'carol', carolKey);

    const first = await signedIn(server.url, 'bob', bobKey);
    const second = await signedIn(server.url, 'bob', bobKey);
    await setIdentityDisabled(server.store, 'ops@host', bob, true);
    // No wait: the next request after the disable is already refused, for both sessions.
    expect((await replay(server.url, first.cookie)).status).toBe(303);
    expect((await replay(server.url, second.cookie)).status).toBe(303);
    await setIdentityDisabled(server.store, 'ops@host', bob, false);
    expect((await replay(server.url, first.cookie)).status).toBe(303);

    const beforeKey = await signedIn(server.url, 'bob', bobKey);
    await setIdentityKey(server.store, 'ops@host', bob, 'bob-new-key-0123456789');
    expect((await replay(server.url, beforeKey.cookie)).status).toBe(303);

    await grantRole(server.store, 'ops@host', bob, 'admin');
    const admin = await signedIn(server.url, 'bob', 'bob-new-key-0123456789');
    expect((await replay(server.url, admin.cookie, '/console/identities')).status).toBe(200);
    await revokeRole(server.store, 'ops@host', bob, 'admin');
    expect((await replay(server.url, admin.cookie, '/console/identities')).status).toBe(303);
    expect((await replay(server.url, admin.cookie)).status).toBe(303);

    // Another identity's session was never touched.
    expect((await replay(server.url, carol.cookie)).status).toBe(200);
    const rows = await server.store.db.selectFrom('console_sessions').selectAll().execute();
    // The table knows sessions only by a hash: no cookie value is stored.
    expect(rows.map((r) => r.token_sha256)).not.toContain(carol.cookie);
    expect(JSON.stringify(rows)).not.toContain(carol.cookie);
  });

  it('form tokens come from a server secret: one computed from the cookie and the console path is refused', async () => {
    const server = await startTestServer(backend, dir);
    const replica = await startTestServer(backend, dir, { store: server.store });
    const key = await server.addIdentity('user', 'dana', ['lab-d-e']);
    const { browser, cookie } = await signedIn(server.url, 'dana', key);
    const form = {
      scope: 'lab-d-e',
      name: 'forged',
      transformations: JSON.stringify([{ name: 'a', protocol: 'echo', inputs: 1 }]),
    };
    // What anyone could compute before: a MAC under a key derived from the console path only.
    const pathKey = createHmac('sha256', 'athanor console csrf').update('/console').digest();
    const guessed = createHmac('sha256', pathKey).update(`session:${cookie}`).digest('base64url');
    const forged = await browser.request('POST', '/console/networks', { _csrf: guessed, ...form });
    expect(forged.status).toBe(403);
    expect(forged.text).toContain('CSRF token is missing or wrong');

    // The page's own token works, and on another replica too (they share the stored secret).
    const token = csrfOf((await browser.get('/console/networks')).text);
    expect(token).not.toBe(guessed);
    const made = await fetch(`${replica.url}/console/networks`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `athanor_session=${cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: token, ...form }).toString(),
    });
    expect(made.status).toBe(303);
    const networks = await server.store.db.selectFrom('networks').select('name').execute();
    expect(networks.map((n) => n.name)).toEqual(['forged']);
  });
});
