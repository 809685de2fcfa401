import fc from 'fast-check';
import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly bodyFields: readonly string[];
}

/** Every operation of the OpenAPI document, with the field names its JSON body schema declares. */
function operationsOf(document: {
  paths: Record<string, Record<string, { requestBody?: unknown }>>;
}): Operation[] {
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const body = operation.requestBody as
        { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } | undefined;
      const fields = Object.keys(body?.content?.['application/json']?.schema?.properties ?? {});
      operations.push({ method: method.toUpperCase(), path, bodyFields: fields });
    }
  }
  return operations;
}

describeEachBackend('a foreign tenant against every route', (backend) => {
  const dir = tempDir();

  it('gets no 5xx, sees no foreign data and changes nothing of the other tenant', async () => {
    const server = await startTestServer(backend, dir);
    // The victim: a network with a completed task (a result), a waiting task and a policy.
    const victim = await queueClients(server, 'victimorg-camp-*');
    const { network, transformations, tasks } = await networkWithTasks(victim.user, {
      scope: 'victimorg-camp-proj',
      count: 2,
    });
    await victim.user.addRestartPolicies(network, [{ pattern: 'retry me', maxRetries: 2 }]);
    const service = await victim.compute.register('victim-worker');
    const [claim] = await victim.compute.claim(service.id, { count: 1 });
    await victim.compute.submitResult(claim!.task, claim!.leaseToken, 'ok', Buffer.from('secret bytes'));
    const [result] = await victim.user.taskResults(claim!.task);
    const victimIds = [network, ...transformations, ...tasks, result!.id, service.id];
    const victimSecrets = ['victimorg', 'secret bytes', ...victimIds];

    // The attacker: its own user and compute identities, in another org, with its own work.
    const attacker = await queueClients(server, 'evilorg-camp-*');
    await networkWithTasks(attacker.user, { scope: 'evilorg-camp-proj' });
    const attackerService = await attacker.compute.register('evil-worker');
    const userKey = await server.addIdentity('user', 'eviluser', ['evilorg-camp-*']);
    const computeKey = await server.addIdentity('compute', 'evilcompute', ['evilorg-camp-*']);
    const userToken = await server.token('user', 'eviluser', userKey);
    const computeToken = await server.token('compute', 'evilcompute', computeKey);

    const victimView = async () => {
      const user = victim.user;
      return {
        networks: await user.listNetworks(),
        tasks: await user.listTasks(),
        network: await user.getNetwork(network),
        hub: await user.networkTasks(network),
        policies: await user.restartPolicies(network),
        results: await Promise.all(tasks.map((t) => user.taskResults(t))),
        status: await user.scopeStatus(),
      };
    };
    const before = await victimView();

    const openapi = (await call(server.url, undefined, 'GET', '/openapi.json')).body as Parameters<
      typeof operationsOf
    >[0];
    const operations = operationsOf(openapi);
    expect(operations.length).toBeGreaterThan(25);

    const idValue = fc.oneof(fc.constantFrom(...victimIds, attackerService.id), fc.string({ maxLength: 30 }));
    const fieldValue = fc.oneof(
      idValue,
      fc.array(idValue, { maxLength: 3 }),
      fc.constantFrom('victimorg-camp-proj', 'victimorg-*-*', '*-*-*', 'active', 'deleted', 'waiting'),
      fc.integer({ min: -2, max: 5 }),
      fc.double(),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const request = fc.constantFrom(...operations).chain((operation) =>
      fc.record({
        operation: fc.constant(operation),
        params: fc.array(idValue, { minLength: 3, maxLength: 3 }),
        body: fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          operation.bodyFields.length
            ? fc.dictionary(fc.constantFrom(...operation.bodyFields), fieldValue, { maxKeys: 4 })
            : fc.constant({}),
        ),
      }),
    );

    await fc.assert(
      fc.asyncProperty(request, async ({ operation, params, body }) => {
        let index = 0;
        const path = operation.path.replace(/:[A-Za-z]+|\{[A-Za-z]+\}/g, () =>
          encodeURIComponent(params[index++ % params.length] || 'x'),
        );
        const token = path.startsWith('/compute/') ? computeToken : userToken;
        const withBody = operation.method !== 'GET' && operation.method !== 'HEAD';
        const response = await call(
          server.url,
          token,
          operation.method,
          path,
          withBody ? JSON.stringify(body) : undefined,
        );
        expect(response.status, `${operation.method} ${path}`).toBeLessThan(500);
        const sent = `${decodeURIComponent(path)} ${JSON.stringify(body)}`;
        for (const secret of victimSecrets) {
          if (!sent.includes(secret))
            expect(response.text, `${operation.method} ${path}`).not.toContain(secret);
        }
      }),
      { numRuns: 300 },
    );
    expect(await victimView()).toEqual(before);
  }, 120_000);
});
