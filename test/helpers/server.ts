import { afterAll } from 'vitest';
import type { Config } from '../../src/config/resolve-config.js';
import { buildApp } from '../../src/server/app.js';
import type { AppOptions } from '../../src/server/app.js';
import { seedIdentity } from './identities.js';
import type { BackendName } from '../../src/store/backend.js';
import type { Store } from '../../src/store/open-store.js';
import { testConfig } from './backends.js';
import { freshStore } from './store.js';

export interface TestServer {
  readonly url: string;
  readonly store: Store;
  /** The database URL, for CLI commands against the same database (undefined for a shared store). */
  readonly databaseUrl: string | undefined;
  readonly config: Config;
  addIdentity(kind: 'user' | 'compute', identifier: string, scopes: string[]): Promise<string>;
  token(kind: 'user' | 'compute', identifier: string, key: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a real listening server on a fresh database (closed when the file ends). */
export async function startTestServer(
  backend: BackendName,
  dir: string,
  overrides: Partial<Config> & { store?: Store; app?: Partial<AppOptions> } = {},
): Promise<TestServer> {
  const fresh = overrides.store ? undefined : await freshStore(backend, dir);
  const store = overrides.store ?? (fresh as { store: Store }).store;
  const config: Config = { ...testConfig('sqlite::memory:', dir), tokenRateLimit: 10_000, ...overrides };
  const app = await buildApp({ store, config, logger: false, ...overrides.app });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
  };
  afterAll(close);
  return {
    url,
    store,
    databaseUrl: fresh?.url,
    config,
    async addIdentity(kind, identifier, scopes) {
      return seedIdentity(store, { kind, identifier, scopes });
    },
    async token(kind, identifier, key) {
      const response = await fetch(`${url}${kind === 'user' ? '/v1' : '/compute/v1'}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: identifier, password: key }),
      });
      if (!response.ok) throw new Error(`token for ${identifier}: HTTP ${response.status}`);
      return ((await response.json()) as { access_token: string }).access_token;
    },
    close,
  };
}

/** A fetch with a bearer token and JSON body; returns status and parsed body. */
export async function call(
  url: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown; text: string; headers: Headers }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}
