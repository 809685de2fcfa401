import { expect, it } from 'vitest';
import { UserClient } from '../../src/client/user-client.js';
import { listIdentities } from '../../src/service/identities.js';
import { seedIdentity } from '../helpers/identities.js';
import { migrate } from '../../src/store/migrator.js';
import { migrations } from '../../src/store/migrations/index.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { call, startTestServer } from '../helpers/server.js';
import { freshStore } from '../helpers/store.js';

const network = (name: string, scope: string, count = 2) => ({
  scope,
  name,
  transformations: Array.from({ length: count }, (_, i) => ({
    name: `t${i}`,
    protocol: 'echo',
    inputs: { index: i, nested: { b: 2, a: 1 } },
  })),
});

describeEachBackend('user API', (backend) => {
  const dir = tempDir();

  async function setup() {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'alice', ['org-camp-*']);
    const client = new UserClient({ url: server.url, identifier: 'alice', key });
    return { server, client };
  }

  it('submitting the same network twice returns the same key and creates nothing new', async () => {
    const { client } = await setup();
    const first = await client.submitNetwork(network('n', 'org-camp-p'));
    expect(first.created).toBe(true);
    expect(first.key).toMatch(/^net-[0-9a-f]{64}$/);
    // Key order inside inputs and transformation order do not change the content.
    const reordered = network('n', 'org-camp-p');
    reordered.transformations.reverse();
    const second = await client.submitNetwork({
      ...reordered,
      transformations: reordered.transformations.map((t) => ({
        ...t,
        inputs: { nested: { a: 1, b: 2 }, index: t.inputs.index },
      })),
    });
    expect(second).toMatchObject({ key: first.key, created: false });
    expect(await client.listNetworks()).toHaveLength(1);
    expect(await client.listTransformations()).toHaveLength(2);
    // The same content in another scope is another network.
    const elsewhere = await client.submitNetwork(network('n', 'org-camp-q'));
    expect(elsewhere.key).not.toBe(first.key);
    expect((await client.listNetworks({ scope: 'org-camp-p' })).map((n) => n.key)).toEqual([first.key]);
  });

  it('refuses writes into scopes the caller does not hold with 403, and wildcard scopes for objects with 400', async () => {
    const { server, client } = await setup();
    const token = await server.token('user', 'alice', 'alice-key-0123456789');
    const foreign = await call(server.url, token, 'POST', '/v1/networks', network('n', 'other-camp-p'));
    expect(foreign.status).toBe(403);
    expect(foreign.body).toMatchObject({ error: { code: 'forbidden' } });
    const wildcard = await call(server.url, token, 'POST', '/v1/networks', network('n', 'org-camp-*'));
    expect(wildcard.status).toBe(400);
    expect(await client.listNetworks()).toHaveLength(0);
  });

  it('creates, actions, cancels and steers tasks in bulk', async () => {
    const { client } = await setup();
    const { key, transformations } = await client.submitNetwork(network('bulk', 'org-camp-p'));
    const [tf] = transformations as [string];
    const tasks = await client.createTasks(tf, { count: 5, priority: 3 });
    expect(tasks.map((t) => [t.status, t.priority])).toEqual(Array(5).fill(['waiting', 3]));
    const ids = tasks.map((t) => t.id);
    const actioned = await client.actionTasks(key, [...ids, 'task-missing'], 0.7);
    expect(actioned.map((a) => a.result)).toEqual([true, true, true, true, true, null]);
    expect((await client.networkTasks(key)).map((t) => t.weight)).toEqual(Array(5).fill(0.7));
    expect((await client.cancelTasks(key, ids.slice(0, 2))).map((a) => a.result)).toEqual([true, true]);
    expect(await client.networkTasks(key)).toHaveLength(3);
    expect((await client.setTaskPriority(ids, 1)).every((a) => a.result === 1)).toBe(true);
    expect(await client.networkStatus(key)).toEqual({ waiting: 5 });
    const invalid = await client.setTaskStatus(ids.slice(0, 3), 'invalid');
    expect(invalid.tasks.map((a) => a.result)).toEqual(['invalid', 'invalid', 'invalid']);
    expect(await client.networkStatus(key)).toEqual({ waiting: 2, invalid: 3 });
    // Invalid is final: back to waiting is refused per task, and the answer says why.
    const back = await client.setTaskStatus(ids.slice(0, 1), 'waiting');
    expect(back.tasks[0]).toMatchObject({ result: 'invalid', error: expect.stringContaining('final') });
    // Invalid tasks leave the hub.
    expect((await client.networkTasks(key)).map((t) => t.id).sort()).toEqual(ids.slice(3).sort());
    expect(await client.scopeStatus('org-*-*')).toEqual({ 'org-camp-p': { waiting: 2, invalid: 3 } });
    const weight = await client.setNetworkWeight(key, 0);
    expect(weight.weight).toBe(0);
    expect((await client.setNetworkState([key], 'inactive'))[0]?.state).toBe('inactive');
  });

  it('cascades invalid and deleted to tasks that extend a task', async () => {
    const { client } = await setup();
    const { transformations } = await client.submitNetwork(network('ext', 'org-camp-p'));
    const [tf, other] = transformations as [string, string];
    const [base] = await client.createTasks(tf);
    const [child] = await client.createTasks(tf, { extends: base!.id });
    const [grandchild] = await client.createTasks(tf, { extends: child!.id });
    expect(grandchild?.extends).toBe(child?.id);
    await expect(client.createTasks(other, { extends: base!.id })).rejects.toMatchObject({
      code: 'conflict',
    });
    const result = await client.setTaskStatus([base!.id], 'deleted');
    expect(result.cascaded.sort()).toEqual([child!.id, grandchild!.id].sort());
    expect((await client.getTask(grandchild!.id)).status).toBe('deleted');
    await expect(client.createTasks(tf, { extends: base!.id })).rejects.toMatchObject({ code: 'conflict' });
  });

  it('keeps restart policies per network', async () => {
    const { client } = await setup();
    const { key } = await client.submitNetwork(network('rp', 'org-camp-p'));
    await client.addRestartPolicies(key, [
      { pattern: 'out of memory', maxRetries: 3 },
      { pattern: '^NodeFailure', maxRetries: 1 },
    ]);
    expect(await client.restartPolicies(key)).toEqual([
      { pattern: '^NodeFailure', maxRetries: 1 },
      { pattern: 'out of memory', maxRetries: 3 },
    ]);
    await expect(
      client.addRestartPolicies(key, [{ pattern: '(unclosed', maxRetries: 1 }]),
    ).rejects.toMatchObject({
      code: 'validation_failed',
    });
    expect(await client.removeRestartPolicies(key, ['^NodeFailure'])).toEqual([
      { pattern: 'out of memory', maxRetries: 3 },
    ]);
  });

  it('answers malformed, invalid and oversized bodies with 4xx naming the field, and changes nothing', async () => {
    const server = await startTestServer(backend, dir, { bodyLimitBytes: 64 * 1024 });
    const key = await server.addIdentity('user', 'vic', ['org-camp-p']);
    const token = await server.token('user', 'vic', key);
    const malformed = await call(server.url, token, 'POST', '/v1/networks', '{"scope": "org-camp-p", ');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ error: { code: 'validation_failed' } });
    const missing = await call(server.url, token, 'POST', '/v1/networks', {
      scope: 'org-camp-p',
      name: 'n',
      transformations: [{ name: 't', inputs: 1 }],
    });
    expect(missing.status).toBe(400);
    expect((missing.body as { error: { message: string } }).error.message).toContain(
      'body/transformations/0',
    );
    expect((missing.body as { error: { message: string } }).error.message).toContain('protocol');
    const badScope = await call(server.url, token, 'POST', '/v1/networks', network('n', 'org-camp'));
    expect(badScope.status).toBe(400);
    expect((badScope.body as { error: { message: string } }).error.message).toContain("'org-camp'");
    const huge = await call(server.url, token, 'POST', '/v1/networks', {
      ...network('n', 'org-camp-p'),
      transformations: [{ name: 't', protocol: 'echo', inputs: 'x'.repeat(100 * 1024) }],
    });
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ error: { code: 'body_too_large' } });
    const badWeight = await call(server.url, token, 'POST', '/v1/networks/state', {
      networks: ['x'],
      state: 'sleeping',
    });
    expect(badWeight.status).toBe(400);
    const listed = await call(server.url, token, 'GET', '/v1/networks');
    expect(listed.body).toEqual([]);
  });

  it('serves an OpenAPI 3.1 document and a docs page', async () => {
    const { server } = await setup();
    const spec = (await call(server.url, undefined, 'GET', '/openapi.json')).body as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/v1/networks', '/v1/tasks/status', '/compute/v1/token']),
    );
    const docs = await fetch(`${server.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('<html');
  });
});

describeEachBackend('upgrading from migration 1', (backend) => {
  const dir = tempDir();

  it('keeps every identity and its scopes', async () => {
    const { store } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, { lockTimeoutMs: 5000, to: 1 });
    for (let i = 0; i < 20; i++) {
      await seedIdentity(store, {
        kind: i % 2 ? 'user' : 'compute',
        identifier: `id${i}`,
        scopes: [`org${i}-*-*`, 'shared-camp-proj'],
      });
    }
    const before = await listIdentities(store, undefined);
    const applied = await migrate(store, { lockTimeoutMs: 5000 });
    expect(applied.map((a) => a.id)).toEqual(migrations.filter((m) => m.id > 1).map((m) => m.id));
    expect(await listIdentities(store, undefined)).toEqual(before);
  });
});
