import type { Store } from '../store/open-store.js';
import { addIdentity, listIdentities, setIdentityKey } from './identities.js';
import { grantRole } from './identity-roles.js';

/** The compute identity `athanor up` runs its local compute service under. */
export const localComputeIdentity = { kind: 'compute', identifier: 'local-compute' } as const;

/**
 * The identities a single-host installation (`athanor up`) needs: on first run (no user yet) an
 * `admin` user with every scope and the admin role (the console's operator pages), whose generated key is returned once; and the local compute
 * service's identity, given `computeKey` (a fresh one every start, living only in that process).
 */
export async function ensureSingleHostIdentities(
  store: Store,
  actor: string,
  computeKey: string,
): Promise<{ readonly adminKey: string | undefined }> {
  let adminKey: string | undefined;
  if ((await listIdentities(store, 'user')).length === 0) {
    const created = await addIdentity(store, actor, { kind: 'user', identifier: 'admin', scopes: ['*-*-*'] });
    adminKey = created.generatedKey;
    await grantRole(store, actor, { kind: 'user', identifier: 'admin' }, 'admin');
  }
  const local = localComputeIdentity;
  if ((await listIdentities(store, 'compute')).some((i) => i.identifier === local.identifier)) {
    await setIdentityKey(store, actor, local, computeKey);
  } else {
    await addIdentity(store, actor, { ...local, key: computeKey, scopes: ['*-*-*'] });
  }
  return { adminKey };
}
