import { ComputeClient } from '../../src/client/compute-client.js';
import { UserClient } from '../../src/client/user-client.js';
import type { TestServer } from './server.js';

/** A user and a compute client on a test server, both holding `scope`. */
export async function queueClients(server: TestServer, scope = 'org-camp-*') {
  const userKey = await server.addIdentity('user', `user${Math.random().toString(36).slice(2, 8)}`, [scope]);
  const userId = userKey.replace(/-key-0123456789$/, '');
  const computeKey = await server.addIdentity('compute', `worker${Math.random().toString(36).slice(2, 8)}`, [
    scope,
  ]);
  const computeId = computeKey.replace(/-key-0123456789$/, '');
  return {
    user: new UserClient({ url: server.url, identifier: userId, key: userKey }),
    compute: new ComputeClient({ url: server.url, identifier: computeId, key: computeKey }),
    computeCredentials: { url: server.url, identifier: computeId, key: computeKey },
    userCredentials: { url: server.url, identifier: userId, key: userKey },
  };
}

/** Submits a network of `count` echo transformations with one actioned task each. */
export async function networkWithTasks(
  user: UserClient,
  options: {
    scope?: string;
    name?: string;
    count?: number;
    protocol?: string;
    inputs?: (i: number) => unknown;
    weight?: number;
    priority?: number;
  } = {},
) {
  const count = options.count ?? 1;
  const network = await user.submitNetwork({
    scope: options.scope ?? 'org-camp-p',
    name: options.name ?? 'net',
    transformations: Array.from({ length: count }, (_, i) => ({
      name: `t${i}`,
      protocol: options.protocol ?? 'echo',
      inputs: options.inputs ? options.inputs(i) : { i },
    })),
  });
  const tasks: string[] = [];
  for (const tf of network.transformations) {
    const [task] = await user.createTasks(tf, options.priority ? { priority: options.priority } : {});
    tasks.push(task!.id);
  }
  for (let i = 0; i < tasks.length; i += 1000) {
    await user.actionTasks(network.key, tasks.slice(i, i + 1000), options.weight);
  }
  return { network: network.key, transformations: network.transformations, tasks };
}
