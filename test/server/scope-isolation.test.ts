import { expect, it } from 'vitest';
import { UserClient } from '../../src/client/user-client.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { call, startTestServer } from '../helpers/server.js';

interface OpenApiOperation {
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
}
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  minimum?: number;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
}

describeEachBackend('scope isolation on every user route', (backend) => {
  const dir = tempDir();

  it('a token for orga-*-* sees, changes and learns nothing of objects in orgb-x-y', async () => {
    const server = await startTestServer(backend, dir);
    const bKey = await server.addIdentity('user', 'bob', ['orgb-x-y']);
    const aKey = await server.addIdentity('user', 'alice', ['orga-*-*']);
    const bob = new UserClient({ url: server.url, identifier: 'bob', key: bKey });
    const alice = new UserClient({ url: server.url, identifier: 'alice', key: aKey });

    // Bob's world: a network, its transformations, tasks on its hub, one extending another, a result.
    const submitted = await bob.submitNetwork({
      scope: 'orgb-x-y',
      name: 'secret-network',
      transformations: [
        { name: 'secret-a', protocol: 'echo', inputs: { canary: 'bob-canary' } },
        { name: 'secret-b', protocol: 'echo', inputs: 2 },
      ],
    });
    const [tfB] = submitted.transformations as [string];
    const [taskB] = await bob.createTasks(tfB, { count: 1 });
    const [taskB2] = await bob.createTasks(tfB, { extends: taskB!.id });
    await bob.actionTasks(submitted.key, [taskB!.id, taskB2!.id]);
    await bob.addRestartPolicies(submitted.key, [{ pattern: 'boom', maxRetries: 2 }]);
    await server.store.db
      .insertInto('results')
      .values({
        id: 'res-bob-secret',
        task_id: taskB!.id,
        scope: 'orgb-x-y',
        attempt: 1,
        lease_token: 1,
        outcome: 'failed',
        blob_sha256: null,
        size_bytes: null,
        error: 'bob-canary failure',
        compute_service_id: null,
        created_at: new Date().toISOString(),
      })
      .execute();
    // Alice has her own network, so list routes have something to return.
    const mine = await alice.submitNetwork({
      scope: 'orga-c-p',
      name: 'mine',
      transformations: [{ name: 'm', protocol: 'echo', inputs: 1 }],
    });

    const snapshot = async () => ({
      networks: await bob.listNetworks(),
      tasks: await bob.listTasks(),
      hub: await bob.networkTasks(submitted.key),
      policies: await bob.restartPolicies(submitted.key),
      status: await bob.scopeStatus(),
    });
    const before = await snapshot();

    const token = await server.token('user', 'alice', aKey);
    const spec = (await call(server.url, undefined, 'GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, OpenApiOperation>>;
    };
    // Every request is made twice: with Bob's ids, and with ids that exist nowhere. The answers
    // must be the same once the ids are swapped: out of scope is indistinguishable from missing.
    const real = {
      network: submitted.key,
      transformation: tfB,
      task: taskB!.id,
      task2: taskB2!.id,
      result: 'res-bob-secret',
    };
    const fake = {
      network: `net-${'f'.repeat(64)}`,
      transformation: `tf-${'e'.repeat(64)}`,
      task: `task-${'d'.repeat(32)}`,
      task2: `task-${'c'.repeat(32)}`,
      result: 'res-nobody-at-all',
    };
    type Ids = typeof real;
    const sample = (ids: Ids, name: string, schema: JsonSchema): unknown => {
      if (name === 'scope') return 'orgb-x-y';
      if (name === 'tasks') return [ids.task, ids.task2];
      if (name === 'networks') return [ids.network];
      if (name === 'extends') return ids.task;
      if (name === 'patterns') return ['boom'];
      if (name === 'state') return 'inactive';
      if (name === 'status') return 'deleted';
      if (schema.anyOf) return sample(ids, name, schema.anyOf[0] as JsonSchema);
      if (schema.const !== undefined) return schema.const;
      if (schema.enum) return schema.enum[0];
      const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
      if (type === 'object') {
        return Object.fromEntries(
          Object.entries(schema.properties ?? {}).map(([k, v]) => [k, sample(ids, k, v)]),
        );
      }
      if (type === 'array') return [sample(ids, name, schema.items ?? {})];
      if (type === 'integer' || type === 'number') return schema.minimum ?? 1;
      if (type === 'string') return 'boom';
      return 1;
    };
    const request = async (ids: Ids, path: string, method: string, operation: OpenApiOperation) => {
      const concrete = path.replace(/\{(\w+)\}/g, () => {
        if (path.startsWith('/v1/results/')) return ids.result;
        if (path.startsWith('/v1/transformations/')) return ids.transformation;
        if (path.startsWith('/v1/tasks/')) return ids.task;
        return ids.network;
      });
      const query = new URLSearchParams();
      for (const p of operation.parameters ?? []) {
        if (p.in !== 'query') continue;
        const value = { scope: 'orgb-*-*', network: ids.network, transformation: ids.transformation }[p.name];
        if (value) query.set(p.name, value);
      }
      const schema = operation.requestBody?.content['application/json']?.schema;
      const url = `${concrete}${query.size ? `?${query}` : ''}`;
      return {
        url,
        ...(await call(
          server.url,
          token,
          method.toUpperCase(),
          url,
          schema ? sample(ids, '', schema) : undefined,
        )),
      };
    };
    const swap = (text: string) =>
      (Object.keys(real) as (keyof Ids)[]).reduce((t, k) => t.split(real[k]).join(fake[k]), text);

    let walked = 0;
    for (const [path, operations] of Object.entries(spec.paths)) {
      if (!path.startsWith('/v1/') || path === '/v1/token') continue;
      for (const [method, operation] of Object.entries(operations)) {
        const missing = await request(fake, path, method, operation);
        const hidden = await request(real, path, method, operation);
        walked++;
        const where = `${method.toUpperCase()} ${hidden.url} → ${hidden.status} ${hidden.text.slice(0, 200)}`;
        expect(hidden.status, where).toBe(missing.status);
        expect(swap(hidden.text), where).toBe(missing.text);
        for (const secret of ['bob-canary', 'secret-']) expect(hidden.text, where).not.toContain(secret);
        expect([200, 400, 403, 404], where).toContain(hidden.status);
      }
    }
    expect(walked).toBeGreaterThanOrEqual(24);
    expect(await snapshot()).toEqual(before);
    // Alice still sees her own network.
    expect((await alice.listNetworks()).map((n) => n.key)).toEqual([mine.key]);
  });
});
