// The in-process Athanor server of the drain benches: a migrated store with the bench's user and
// compute identities, listening on a loopback port.
import { UserClient } from '../dist/client/index.js';
import { buildApp } from '../dist/server/app.js';
import { addIdentity } from '../dist/service/identities.js';
import { migrate } from '../dist/store/migrator.js';
import { openStore } from '../dist/store/open-store.js';

export const benchUser = { identifier: 'bench', key: 'bench-user-key-000' };
export const benchCompute = { identifier: 'benchc', key: 'bench-compute-key' };

/** Opens and migrates the store of `config` (`storeOptions` as for openStore) and serves it. */
export async function startBenchServer(config, storeOptions = {}) {
  const store = await openStore(config, { create: true, ...storeOptions });
  await migrate(store, { lockTimeoutMs: 60_000 });
  await addIdentity(store, 'bench', { kind: 'user', ...benchUser, scopes: ['*-*-*'] });
  await addIdentity(store, 'bench', { kind: 'compute', ...benchCompute, scopes: ['*-*-*'] });
  const app = await buildApp({ store, config, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${app.server.address().port}`;
  return { store, app, url, user: new UserClient({ url, ...benchUser }) };
}
