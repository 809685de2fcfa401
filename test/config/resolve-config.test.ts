import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve-config.js';
import { redactUrl } from '../../src/domain/database-url.js';
import { backupDecryptionKeys, backupEncryption } from '../../src/ops/backup/encryption.js';
import { resolveDeploySettings } from '../../src/ops/deploy/deploy-settings.js';
import { resolveScheduleSettings } from '../../src/ops/schedule/schedule-settings.js';

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

describe('every setting has one source', () => {
  it('takes the backup target, schedule, log level, trust proxy and client URL/id from the config file', () => {
    const dir = dirWithConfig({
      backupTarget: 's3://bucket/backups',
      backupSchedule: '15 * * * *',
      backupKeep: 'daily=3',
      logLevel: 'warn',
      trustProxy: true,
      url: 'https://athanor.example',
      id: 'alice',
      computeId: 'hpc-1',
    });
    expect(resolveConfig({}, {}, dir)).toMatchObject({
      backupTarget: 's3://bucket/backups',
      backupSchedule: '15 * * * *',
      backupKeep: 'daily=3',
      logLevel: 'warn',
      trustProxy: true,
      url: 'https://athanor.example',
      id: 'alice',
      computeId: 'hpc-1',
    });
    // The environment still wins over the file.
    const fromEnv = resolveConfig({}, { ATHANOR_TRUST_PROXY: '0', ATHANOR_BACKUP_TARGET: 'file:/b' }, dir);
    expect(fromEnv).toMatchObject({ trustProxy: false, backupTarget: 'file:/b' });
  });

  it('writes each default once: the backup target follows the data directory', () => {
    expect(resolveConfig({ dataDir: '/srv/a' }, {}, '/')).toMatchObject({
      backupTarget: 'file:/srv/a/backups',
      logLevel: 'info',
      trustProxy: false,
      url: 'http://127.0.0.1:8080',
      key: undefined,
    });
  });

  it('reads secrets from the variable or its _FILE, never from the config file', () => {
    const dir = dirWithConfig({});
    const keyFile = path.join(dir, 'key.txt');
    writeFileSync(keyFile, 'alice-key-from-file\n');
    expect(resolveConfig({}, { ATHANOR_KEY_FILE: keyFile }, dir).key).toBe('alice-key-from-file');
    expect(resolveConfig({}, { ATHANOR_COMPUTE_KEY_FILE: keyFile }, dir).computeKey).toBe(
      'alice-key-from-file',
    );
    expect(() => resolveConfig({}, { ATHANOR_KEY_FILE: path.join(dir, 'missing') }, dir)).toThrow(
      /cannot read ATHANOR_KEY_FILE \(.*missing\)/,
    );
    expect(() => resolveConfig({}, {}, dirWithConfig({ key: 'in-the-file' }))).toThrow(
      /'key' is a secret and is read only from ATHANOR_KEY or ATHANOR_KEY_FILE/,
    );
    expect(() => resolveConfig({}, { ATHANOR_TRUST_PROXY: 'maybe' }, dir)).toThrow(
      /ATHANOR_TRUST_PROXY \(trustProxy\) must be 1 or 0, got 'maybe'/,
    );
  });

  it('takes backup encryption from its settings: recipients from the config file, the passphrase only from the environment', () => {
    const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    const dir = dirWithConfig({ backupAgeRecipients: recipient });
    expect(backupEncryption(resolveConfig({}, {}, dir))).toEqual({
      mode: 'recipients',
      recipients: [recipient],
    });
    expect(() => resolveConfig({}, {}, dirWithConfig({ backupPassphrase: 'in-the-file' }))).toThrow(
      /'backupPassphrase' is a secret and is read only from ATHANOR_BACKUP_PASSPHRASE or ATHANOR_BACKUP_PASSPHRASE_FILE/,
    );
    // A passphrase file keeps spaces: only its final newline goes, so old backups still open.
    const passphraseFile = path.join(dir, 'passphrase.txt');
    writeFileSync(passphraseFile, ' spaced passphrase \n');
    const fromFile = resolveConfig({}, { ATHANOR_BACKUP_PASSPHRASE_FILE: passphraseFile }, dirWithConfig({}));
    expect(backupEncryption(fromFile)).toEqual({ mode: 'passphrase', passphrase: ' spaced passphrase ' });
    expect(backupDecryptionKeys(fromFile)).toEqual({ identities: [], passphrases: [' spaced passphrase '] });
    expect(() =>
      resolveConfig({}, { ATHANOR_BACKUP_PASSPHRASE_FILE: path.join(dir, 'missing') }, dirWithConfig({})),
    ).toThrow(/cannot read ATHANOR_BACKUP_PASSPHRASE_FILE \(.*missing\)/);
  });

  it('never reads an encryption setting set to nothing as "unencrypted"', () => {
    const cwd = dirWithConfig({});
    for (const env of [
      { ATHANOR_BACKUP_PASSPHRASE: '' },
      { ATHANOR_BACKUP_AGE_RECIPIENTS: '' },
      { ATHANOR_BACKUP_AGE_RECIPIENTS: ' , ' },
    ]) {
      expect(() => backupEncryption(resolveConfig({}, env, cwd)), JSON.stringify(env)).toThrow(
        expect.objectContaining({ code: 'backup_key_missing' }),
      );
    }
    expect(backupEncryption(resolveConfig({}, {}, cwd))).toEqual({ mode: 'none' });
  });

  it('reads deploy and retention settings like every other: flag > variable > config file > default', () => {
    const dir = dirWithConfig({ deployBlueUrl: 'http://10.0.0.5:8081/', backupKeepDaily: 30 });
    const config = resolveConfig({}, { ATHANOR_BACKUP_KEEP_WEEKLY: '4' }, dir);
    expect(config).toMatchObject({
      deployGreenUrl: 'http://127.0.0.1:8082',
      backupKeepWeekly: 4,
      backupKeepDaily: 30,
    });
    expect(resolveDeploySettings(config).urls.blue).toBe('http://10.0.0.5:8081');
    expect(resolveDeploySettings(config, { blueUrl: 'http://10.0.0.6:8081' }).urls.blue).toBe(
      'http://10.0.0.6:8081',
    );
    expect(resolveScheduleSettings({ profile: 'serve', config }).retention).toEqual({
      keepDaily: 30,
      keepWeekly: 4,
    });
    expect(() => resolveConfig({}, { ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS: 'soon' }, dir)).toThrow(
      /ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS \(deployDrainTimeoutMs\) must be a whole number, got 'soon'/,
    );
    expect(() =>
      resolveDeploySettings(resolveConfig({}, { ATHANOR_DEPLOY_GREEN_URL: 'ftp://x' }, dir)),
    ).toThrow(/ATHANOR_DEPLOY_GREEN_URL must be an http\(s\) URL/);
  });
});
