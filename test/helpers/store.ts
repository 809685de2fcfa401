import { afterAll } from 'vitest';
import type { BackendName } from '../../src/store/backend.js';
import { migrate } from '../../src/store/migrator.js';
import type { OpenStoreOptions, Store } from '../../src/store/open-store.js';
import { openStore } from '../../src/store/open-store.js';
import { freshDatabaseUrl, testConfig } from './backends.js';

/** Opens a store on a fresh database (closed when the file ends); migrated unless told not to. */
export async function freshStore(
  backend: BackendName,
  dir: string,
  options: { migrated?: boolean; open?: OpenStoreOptions } = {},
): Promise<{ store: Store; url: string }> {
  const url = await freshDatabaseUrl(backend, dir);
  const store = await openStore(testConfig(url, dir), { create: true, ...options.open });
  afterAll(() => store.close());
  if (options.migrated ?? true) await migrate(store, { lockTimeoutMs: 10_000 });
  return { store, url };
}
