import { addIdentity } from '../../src/service/identities.js';
import type { Store } from '../../src/store/open-store.js';

/** The key the suite gives an identity it seeds: long enough for the key rules, and easy to read. */
export const testKey = (identifier: string): string => `${identifier}-key-0123456789`;

/** The user `alice` and the compute identity `hpc` that most queue tests run as, with their keys. */
export const queueIdentities = {
  user: { identifier: 'alice', key: testKey('alice') },
  compute: { identifier: 'hpc', key: testKey('hpc') },
} as const;

/**
 * Adds one identity straight through the service, as `athanor identity add` would (audited as
 * `test`), and returns its key: `testKey(identifier)` unless given.
 */
export async function seedIdentity(
  store: Store,
  identity: {
    readonly kind: 'user' | 'compute';
    readonly identifier: string;
    readonly scopes?: readonly string[];
    readonly key?: string;
  },
): Promise<string> {
  const key = identity.key ?? testKey(identity.identifier);
  await addIdentity(store, 'test', {
    kind: identity.kind,
    identifier: identity.identifier,
    key,
    ...(identity.scopes ? { scopes: [...identity.scopes] } : {}),
  });
  return key;
}

/** Seeds `queueIdentities` on `scopes` (default `org-camp-*`) and returns them. */
export async function seedQueueIdentities(
  store: Store,
  scopes: readonly string[] = ['org-camp-*'],
): Promise<typeof queueIdentities> {
  await seedIdentity(store, { kind: 'user', ...queueIdentities.user, scopes });
  await seedIdentity(store, { kind: 'compute', ...queueIdentities.compute, scopes });
  return queueIdentities;
}
