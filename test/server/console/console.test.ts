import { expect, it } from 'vitest';
import { maintenanceNoticeMs } from '../../../src/ops/maintenance.js';
import { listAudit } from '../../../src/service/audit.js';
import { grantRole } from '../../../src/service/identity-roles.js';
import { setIdentityDisabled, setIdentityKey } from '../../../src/service/identities.js';
import type { Store } from '../../../src/store/open-store.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { ConsoleClient, csrfOf } from '../../helpers/console-client.js';
import { startTestServer } from '../../helpers/server.js';

const hostile = '<img src=x onerror=alert(1)>';

async function networkCount(server: { store: Store }) {
  const row = await server.store.db
    .selectFrom('networks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** The console's answer once the session ends, or 200 if it still works 5 s on. */
async function statusWithin5s(browser: ConsoleClient): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const status = (await browser.get('/console/')).status;
    if (status !== 200 || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describeEachBackend('web console', (backend) => {
  const dir = tempDir();

  it('signs in with an identity and key into an HttpOnly, SameSite=Strict session cookie; a wrong key is refused', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'alice', ['lab-a-b']);
    const browser = new ConsoleClient(server.url);
    const first = await browser.get('/console/');
    expect(first.status).toBe(303);
    expect(first.location).toBe('/console/signin?next=%2Fconsole%2F');

    const wrong = await browser.signIn('alice', 'not-the-key-0123456789');
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('wrong identifier or key');
    expect(browser.cookie('athanor_session')).toBeUndefined();

    const signedIn = await browser.signIn('alice', key);
    expect(signedIn.status).toBe(303);
    const setCookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('athanor_session='));
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\/console/);
    expect(setCookie).not.toMatch(/Secure/i);
    const overview = await browser.get('/console/');
    expect(overview.status).toBe(200);
    expect(overview.text).toContain('Sign out alice');

    const csp = overview.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    // Every script is a file from this server; none is inline.
    expect(overview.text).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    const script = await browser.get('/console/assets/console.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    const css = await browser.get('/console/assets/pico.min.css');
    expect(css.text.length).toBeGreaterThan(10_000);

    await browser.request('POST', '/console/signout', {});
    expect((await browser.get('/console/')).status).toBe(303);
  });

  it('renders hostile names as text, refuses a form without its CSRF token, and audits what it does', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'carol', ['lab-x-y']);
    const browser = new ConsoleClient(server.url);
    await browser.signIn('carol', key);
    const transformations = JSON.stringify([{ name: hostile, protocol: 'echo', inputs: { n: 1 } }]);

    const before = await networkCount(server);
    const forged = await browser.request('POST', '/console/networks', {
      scope: 'lab-x-y',
      name: hostile,
      transformations,
      tasks: '2',
    });
    expect(forged.status).toBe(403);
    expect(forged.text).toContain('CSRF token is missing or wrong');
    const wrongToken = await browser.request('POST', '/console/networks', {
      _csrf: 'x'.repeat(43),
      scope: 'lab-x-y',
      name: hostile,
      transformations,
    });
    expect(wrongToken.status).toBe(403);
    expect(await networkCount(server)).toBe(before);

    const submitted = await browser.post('/console/networks', '/console/networks', {
      scope: 'lab-x-y',
      name: hostile,
      transformations,
      tasks: '2',
    });
    expect(submitted.status).toBe(303);
    const networkPage = await browser.get(submitted.location!);
    expect(networkPage.status).toBe(200);
    expect(networkPage.text).not.toContain(hostile);
    expect(networkPage.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(networkPage.text).toContain('submitted; 2 tasks actioned');

    const list = await browser.get('/console/networks');
    expect(list.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(list.text).not.toContain(hostile);

    const audit = await listAudit(server.store, { actor: 'user:carol' });
    expect(audit.map((a) => [a.action, a.outcome])).toEqual([['network.submit', 'ok']]);

    const badJson = await browser.post('/console/networks', '/console/networks', {
      scope: 'lab-x-y',
      name: 'broken',
      transformations: '[{"name": ',
    });
    expect(badJson.status).toBe(400);
    expect(badJson.text).toContain('not valid JSON');
  });

  it('shows only what the scopes allow: another scope’s network and task are not reachable by URL', async () => {
    const server = await startTestServer(backend, dir);
    const ownerKey = await server.addIdentity('user', 'owner', ['secret-x-y']);
    const otherKey = await server.addIdentity('user', 'other', ['open-x-y']);
    const owner = new ConsoleClient(server.url);
    await owner.signIn('owner', ownerKey);
    const made = await owner.post('/console/networks', '/console/networks', {
      scope: 'secret-x-y',
      name: 'classified-network',
      transformations: JSON.stringify([{ name: 'classified-step', protocol: 'echo', inputs: 1 }]),
      tasks: '1',
    });
    const networkPath = made.location!.split('?')[0]!;
    const [task] = await server.store.db
      .selectFrom('tasks')
      .select('id')
      .where('scope', '=', 'secret-x-y')
      .execute();

    const other = new ConsoleClient(server.url);
    await other.signIn('other', otherKey);
    for (const path of [networkPath, `/console/tasks/${task!.id}`]) {
      const page = await other.get(path);
      expect(page.status).toBe(404);
      expect(page.text).not.toContain('classified');
    }
    expect((await other.get('/console/networks')).text).not.toContain('classified-network');
    expect((await other.get('/console/tasks')).text).not.toContain(task!.id);
    const steer = await other.post('/console/networks', `${networkPath}/weight`, { weight: '0' });
    expect(steer.status).toBe(404);
    const network = await server.store.db
      .selectFrom('hubs')
      .select('weight')
      .where('scope', '=', 'secret-x-y')
      .executeTakeFirst();
    expect(network?.weight).toBe(0.5);
    // A scientist does not get the operator pages.
    expect((await other.get('/console/identities')).status).toBe(403);
    expect((await other.get('/console/audit')).status).toBe(403);
  });

  it('restarts an errored task, showing its error text, and records the restart', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'dana', ['lab-r-s']);
    const browser = new ConsoleClient(server.url);
    await browser.signIn('dana', key);
    await browser.post('/console/networks', '/console/networks', {
      scope: 'lab-r-s',
      name: 'failing',
      transformations: JSON.stringify([{ name: 'step', protocol: 'sleep', inputs: {} }]),
      tasks: '1',
    });
    const [task] = await server.store.db.selectFrom('tasks').select('id').execute();
    await server.store.db
      .updateTable('tasks')
      .set({ status: 'error', last_error: 'ValueError: <b>bad input</b>' })
      .where('id', '=', task!.id)
      .execute();
    // As a failure does, the task leaves its hub.
    await server.store.db.deleteFrom('hub_tasks').where('task_id', '=', task!.id).execute();

    const errored = await browser.get('/console/tasks?status=error');
    expect(errored.text).toContain(task!.id);
    await server.store.db
      .insertInto('task_attempts')
      .values({
        task_id: task!.id,
        lease_token: 7,
        attempt: 1,
        scope: 'lab-r-s',
        compute_identity: 'worker-7',
        compute_service_id: 'svc-1',
        hostname: 'gpu<1>',
        claimed_at: '2026-12-01T10:00:00.000Z',
        ended_at: '2026-12-01T10:05:00.000Z',
        outcome: 'failed',
        result_id: null,
        reason: null,
      })
      .execute();
    const taskPage = await browser.get(`/console/tasks/${task!.id}`);
    expect(taskPage.text).toContain('ValueError: &lt;b&gt;bad input&lt;/b&gt;');
    // The attempt history: which compute identity on which host, and how it ended.
    const attempts = taskPage.text.slice(taskPage.text.indexOf('id="attempts"'));
    expect(attempts).toMatch(/<td>1<\/td>\s*<td><span[^>]*>failed<\/span>[\s\S]*worker-7[\s\S]*gpu&lt;1&gt;/);
    // Attempts are numbered; the lease's fencing token (7) is not shown.
    expect(attempts.slice(0, attempts.indexOf('</table>'))).not.toContain('<td>7</td>');

    const restarted = await browser.post(`/console/tasks/${task!.id}`, '/console/tasks/restart', {
      task: task!.id,
      back: 'task',
    });
    expect(restarted.status).toBe(303);
    expect(restarted.location).toContain(`/console/tasks/${task!.id}`);
    const row = await server.store.db
      .selectFrom('tasks')
      .select('status')
      .where('id', '=', task!.id)
      .executeTakeFirst();
    expect(row?.status).toBe('waiting');
    const hub = await server.store.db
      .selectFrom('hub_tasks')
      .select('task_id')
      .where('task_id', '=', task!.id)
      .execute();
    expect(hub, 'a restarted task is back on its network hub, so it can be claimed').toHaveLength(1);
    const audit = await listAudit(server.store, { actor: 'user:dana', action: 'task.restart' });
    expect(audit).toHaveLength(1);
    expect(audit[0]?.outcome).toBe('ok');
  });

  it('opens the operator pages to admins, adds an identity showing its key once, and ends a disabled identity’s session within 5 s', async () => {
    const server = await startTestServer(backend, dir);
    const adminKey = await server.addIdentity('user', 'root', ['*-*-*']);
    await grantRole(server.store, 'test', { kind: 'user', identifier: 'root' }, 'admin');
    const admin = new ConsoleClient(server.url);
    await admin.signIn('root', adminKey);
    expect((await admin.get('/console/identities')).status).toBe(200);

    const added = await admin.post('/console/identities', '/console/identities', {
      kind: 'user',
      identifier: 'newcomer',
      scopes: 'lab-n-m',
    });
    expect(added.status).toBe(200);
    expect(added.headers.get('cache-control')).toBe('no-store');
    const newKey = /id="new-key">([^<]+)</.exec(added.text)?.[1];
    expect(newKey).toBeTruthy();
    // The key is shown once: the identities page never shows it again.
    expect((await admin.get('/console/identities')).text).not.toContain(newKey!);

    const newcomer = new ConsoleClient(server.url);
    expect((await newcomer.signIn('newcomer', newKey!)).status).toBe(303);
    expect((await newcomer.get('/console/tasks')).status).toBe(200);

    const disabled = await admin.post('/console/identities', '/console/identities/user/newcomer/disable', {});
    expect(disabled.status).toBe(303);
    const disabledAt = Date.now();
    let endedAfterMs: number | undefined;
    while (Date.now() - disabledAt < 5000) {
      const page = await newcomer.get('/console/tasks');
      if (page.status === 303 && page.location?.startsWith('/console/signin')) {
        endedAfterMs = Date.now() - disabledAt;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(endedAfterMs, 'the session still worked 5 s after the identity was disabled').toBeDefined();

    const audit = await listAudit(server.store, { actor: 'user:root' });
    expect(audit.map((a) => a.action)).toEqual(['identity.add', 'identity.disable']);
    // Maintenance can be turned on and back off from the console, writes refused in between.
    await admin.post('/console/maintenance', '/console/maintenance', { on: '1', reason: 'upgrade' });
    // Servers re-read maintenance mode every second.
    await new Promise((resolve) => setTimeout(resolve, maintenanceNoticeMs));
    const refused = await admin.post('/console/networks', '/console/networks', {
      scope: 'lab-n-m',
      name: 'during-maintenance',
      transformations: JSON.stringify([{ name: 'a', protocol: 'echo', inputs: 1 }]),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(refused.text).toContain('maintenance');
    const off = await admin.post('/console/maintenance', '/console/maintenance', { on: '0' });
    expect(off.status).toBe(303);
    expect((await admin.get('/console/maintenance')).text).toContain('Turn maintenance on');
  });

  it('a session ended by a disable stays ended after re-enabling, and a key rotation ends the next one', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'erin', ['lab-e-f']);
    const browser = new ConsoleClient(server.url);
    await browser.signIn('erin', key);
    expect((await browser.get('/console/')).status).toBe(200);
    await setIdentityDisabled(server.store, 'ops@host', { kind: 'user', identifier: 'erin' }, true);
    await setIdentityDisabled(server.store, 'ops@host', { kind: 'user', identifier: 'erin' }, false);
    // Enabling it again does not bring the old session back: the stamp moved on at the disable.
    expect(await statusWithin5s(browser)).toBe(303);
    expect((await browser.signIn('erin', key)).status).toBe(303);
    expect((await browser.get('/console/')).status).toBe(200);
    await setIdentityKey(
      server.store,
      'ops@host',
      { kind: 'user', identifier: 'erin' },
      'erin-new-key-0123456789',
    );
    expect(await statusWithin5s(browser)).toBe(303);
    expect((await browser.signIn('erin', key)).status).toBe(401);
  });
});

describeEachBackend('web console settings', (backend) => {
  const dir = tempDir();

  it('marks the session cookie Secure when a trusted proxy says the request came over TLS', async () => {
    const server = await startTestServer(backend, dir, { trustProxy: true });
    const key = await server.addIdentity('user', 'tls', ['lab-t-s']);
    const browser = new ConsoleClient(server.url);
    const https = { 'x-forwarded-proto': 'https' };
    const form = await browser.request('GET', '/console/signin', undefined, https);
    const signedIn = await browser.request(
      'POST',
      '/console/signin',
      { _csrf: csrfOf(form.text), identifier: 'tls', key },
      https,
    );
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('athanor_session='));
    expect(cookie).toMatch(/; Secure/i);
  });

  it('can be moved to another path or turned off', async () => {
    const moved = await startTestServer(backend, dir, { consolePath: '/ops/console' });
    const browser = new ConsoleClient(moved.url, '/ops/console');
    expect((await browser.get('/ops/console/signin')).status).toBe(200);
    expect((await browser.get('/console/signin')).status).toBe(404);
    const off = await startTestServer(backend, dir, { consolePath: undefined });
    expect((await new ConsoleClient(off.url).get('/console/signin')).status).toBe(404);
  });
});
