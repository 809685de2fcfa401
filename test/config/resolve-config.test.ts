import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { redactUrl, resolveConfig } from '../../src/config/resolve-config.js';

function dirWithConfig(content: unknown): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-config-'));
  writeFileSync(path.join(dir, 'athanor.config.json'), JSON.stringify(content));
  return dir;
}

describe('resolveConfig', () => {
  it('defaults to SQLite and local objects under ./athanor-data', () => {
    const config = resolveConfig({}, {}, '/srv/app');
    expect(config.dataDir).toBe('/srv/app/athanor-data');
    expect(config.databaseUrl).toBe('sqlite:/srv/app/athanor-data/athanor.db');
    expect(config.objectsUrl).toBe('file:/srv/app/athanor-data/objects');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes flag over environment over config file over default', () => {
    const dir = dirWithConfig({
      databaseUrl: 'sqlite:from-file.db',
      busyTimeoutMs: 111,
      dataDir: 'file-data',
    });
    const fileOnly = resolveConfig({}, {}, dir);
    expect(fileOnly.databaseUrl).toBe(`sqlite:${path.join(dir, 'from-file.db')}`);
    expect(fileOnly.busyTimeoutMs).toBe(111);
    expect(fileOnly.dataDir).toBe(path.join(dir, 'file-data'));

    const env = { ATHANOR_DATABASE_URL: 'postgres://u@h/db', ATHANOR_BUSY_TIMEOUT_MS: '222' };
    const fromEnv = resolveConfig({}, env, dir);
    expect(fromEnv.databaseUrl).toBe('postgres://u@h/db');
    expect(fromEnv.busyTimeoutMs).toBe(222);

    const fromFlag = resolveConfig({ databaseUrl: 'sqlite:/tmp/flag.db', busyTimeoutMs: 333 }, env, dir);
    expect(fromFlag.databaseUrl).toBe('sqlite:/tmp/flag.db');
    expect(fromFlag.busyTimeoutMs).toBe(333);
  });

  it('reads the config file named by ATHANOR_CONFIG', () => {
    const dir = dirWithConfig({});
    const other = path.join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ lockTimeoutMs: 5 }));
    expect(resolveConfig({}, { ATHANOR_CONFIG: other }, dir).lockTimeoutMs).toBe(5);
  });

  it('refuses unknown settings, bad numbers and unsupported URLs with a clear message', () => {
    expect(() => resolveConfig({}, {}, dirWithConfig({ databseUrl: 'x' }))).toThrow(
      /unknown setting 'databseUrl'/,
    );
    expect(() => resolveConfig({}, { ATHANOR_BUSY_TIMEOUT_MS: 'soon' }, '/')).toThrow(
      /ATHANOR_BUSY_TIMEOUT_MS .* whole number, got 'soon'/,
    );
    expect(() => resolveConfig({}, { ATHANOR_DATABASE_URL: 'mysql://root:pw@h/db' }, '/')).toThrow(
      /'mysql:\/\/root:\*\*\*@h\/db' is not supported/,
    );
  });

  it('reads the database URL from ATHANOR_DATABASE_URL_FILE, below the variable and the flag', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-config-'));
    const file = path.join(dir, 'database-url');
    writeFileSync(file, 'postgres://athanor:s3cret@db:5432/athanor\n');
    const env = { ATHANOR_DATABASE_URL_FILE: file };
    expect(resolveConfig({}, env, dir).databaseUrl).toBe('postgres://athanor:s3cret@db:5432/athanor');
    expect(resolveConfig({}, { ...env, ATHANOR_DATABASE_URL: 'sqlite:env.db' }, dir).databaseUrl).toBe(
      `sqlite:${path.join(dir, 'env.db')}`,
    );
    expect(resolveConfig({ databaseUrl: 'sqlite:flag.db' }, env, dir).databaseUrl).toBe(
      `sqlite:${path.join(dir, 'flag.db')}`,
    );
    const missing = { ATHANOR_DATABASE_URL_FILE: path.join(dir, 'absent') };
    expect(() => resolveConfig({}, missing, dir)).toThrow(/cannot read ATHANOR_DATABASE_URL_FILE .*absent/);
  });

  it('hides passwords in URLs', () => {
    expect(redactUrl('postgres://athanor:s3cret@db:5432/athanor')).toBe(
      'postgres://athanor:***@db:5432/athanor',
    );
    expect(redactUrl('sqlite:/x.db')).toBe('sqlite:/x.db');
  });
});
