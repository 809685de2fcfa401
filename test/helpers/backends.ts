import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, inject } from 'vitest';
import type { Config } from '../../src/config/resolve-config.js';
import { resolveConfig } from '../../src/config/resolve-config.js';
import type { BackendName } from '../../src/store/backend.js';

export const postgresAdminUrl = (): string => inject('postgresAdminUrl');

/** A scratch directory removed when the test file ends. */
export function tempDir(prefix = 'athanor-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Creates an empty PostgreSQL database in the suite's cluster and returns its URL. */
export async function createPostgresDatabase(): Promise<string> {
  const admin = postgresAdminUrl();
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh, empty database URL on the given backend. */
export async function freshDatabaseUrl(backend: BackendName, dir: string): Promise<string> {
  if (backend === 'postgres') return createPostgresDatabase();
  return `sqlite:${path.join(dir, `${randomBytes(6).toString('hex')}.db`)}`;
}

export function testConfig(databaseUrl: string, dataDir: string): Config {
  return resolveConfig({ databaseUrl, dataDir }, {});
}

export const backendNames: readonly BackendName[] = ['sqlite', 'postgres'];

/**
 * Declares the suite once per backend. PostgreSQL suites run only when the cluster started; the
 * global setup already failed the run under CI=true when it could not.
 */
export function describeEachBackend(name: string, body: (backend: BackendName) => void): void {
  for (const backend of backendNames) {
    const available = backend === 'sqlite' || postgresAdminUrl() !== '';
    describe.runIf(available)(`${name} [${backend}]`, () => body(backend));
  }
}
