import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { expect, it } from 'vitest';
import { listBackups } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, dumpDatabase, freshTarget, populate, withoutAudit } from './fixtures.js';

const canary = 'CANARY-5f1e7c0a9b';

const ageAvailable = spawnSync('age', ['--version']).status === 0;
if (!ageAvailable) {
  if (process.env.CI === 'true')
    throw new Error('the age tool is missing; CI must run the age interoperability test');
  const banner = '!'.repeat(78);
  process.stderr.write(
    `\n${banner}\n!! SKIPPING the age interoperability test: the 'age' tool is not installed.\n` +
      `!! Install age (https://age-encryption.org) to run it; under CI=true this is a failure.\n${banner}\n\n`,
  );
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

async function databaseWithCanary(backend: 'sqlite' | 'postgres', dir: string) {
  const fresh = await freshStore(backend, dir);
  await populate(fresh.store, { rows: 10 });
  await fresh.store.db
    .insertInto('settings')
    .values({ key: 'secret', value: `the ${canary} must not leak`, updated_at: 'now' })
    .execute();
  return fresh;
}

describeEachBackend('encrypted backups', (backend) => {
  const dir = tempDir();

  it.runIf(ageAvailable)(
    'to age recipients: no plaintext at the target, the age tool opens a file, a wrong key fails clearly',
    async () => {
      const { store, url } = await databaseWithCanary(backend, dir);
      const before = await dumpDatabase(store);
      const identity = await generateX25519Identity();
      const keyFile = path.join(dir, `key-${backend}.txt`);
      writeFileSync(keyFile, `# test key\n${identity}\n`);
      const otherKeyFile = path.join(dir, `other-${backend}.txt`);
      writeFileSync(otherKeyFile, `${await generateX25519Identity()}\n`);
      const target = freshTarget(dir);
      const root = target.url.slice('file:'.length);
      const env = {
        ATHANOR_DATABASE_URL: url,
        ATHANOR_BACKUP_TARGET: target.url,
        ATHANOR_BACKUP_AGE_RECIPIENTS: `${await identityToRecipient(identity)}, ${await identityToRecipient(await generateX25519Identity())}`,
      };
      const created = await runCli(['backup', 'create', '--json'], { env });
      expect(created.code, created.stderr).toBe(0);
      const { id } = JSON.parse(created.stdout) as { id: string };

      const files = filesUnder(root);
      expect(files.length).toBeGreaterThan(4);
      for (const file of files) expect(readFileSync(file).includes(canary), file).toBe(false);
      const settingsChunk = files.find((f) => path.basename(f).startsWith('settings.'));
      expect(settingsChunk).toMatch(/\.ndjson\.gz\.age$/);
      const opened = gunzipSync(execFileSync('age', ['-d', '-i', keyFile, settingsChunk as string]));
      expect(opened.toString()).toContain(canary);

      const wrong = await runCli(
        ['backup', 'restore', id, '--database-url', await freshDatabaseUrl(backend, dir)],
        {
          env: { ...env, ATHANOR_BACKUP_AGE_IDENTITY_FILE: otherKeyFile },
        },
      );
      expect(wrong.code).toBe(4);
      expect(wrong.stderr).toContain(`cannot decrypt backup ${id}: none of the configured keys opens it`);
      const missing = await runCli(
        ['backup', 'restore', id, '--database-url', await freshDatabaseUrl(backend, dir)],
        {
          env,
        },
      );
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('set ATHANOR_BACKUP_AGE_IDENTITY_FILE');

      const intoUrl = await freshDatabaseUrl(backend, dir);
      const restored = await runCli(['backup', 'restore', id, '--database-url', intoUrl], {
        env: { ...env, ATHANOR_BACKUP_AGE_IDENTITY_FILE: keyFile },
      });
      expect(restored.code, restored.stderr).toBe(0);
      const into = await openStore(configFor(intoUrl, dir));
      try {
        expect(withoutAudit(await dumpDatabase(into), 'backup.restore')).toEqual(before);
      } finally {
        await into.close();
      }

      // The target now holds encrypted backups: without a key, a new backup is refused, not written in plaintext.
      const plain = await runCli(['backup', 'create'], {
        env: { ...env, ATHANOR_BACKUP_AGE_RECIPIENTS: undefined },
      });
      expect(plain.code).toBe(2);
      expect(plain.stderr).toContain('holds encrypted backups but no encryption key is configured');
      expect((await listBackups(target)).map((b) => b.id)).toEqual([id]);
    },
  );

  it('with a passphrase: every file encrypted, restorable with the passphrase only, a wrong one fails clearly', async () => {
    const { store, url } = await databaseWithCanary(backend, dir);
    const before = await dumpDatabase(store);
    const target = freshTarget(dir);
    const root = target.url.slice('file:'.length);
    const passphrase = 'correct horse battery staple';
    const { manifest } = await createBackup({
      config: configFor(url, dir),
      target,
      encryption: { mode: 'passphrase', passphrase },
    });
    expect(manifest.encryption.mode).toBe('passphrase');
    for (const file of filesUnder(root)) expect(readFileSync(file).includes(canary), file).toBe(false);
    expect(existsSync(path.join(root, manifest.id, 'key.age'))).toBe(true);

    // key.age opens with the passphrase and holds the age identity every other file opens with.
    const keyDecrypter = new Decrypter();
    keyDecrypter.addPassphrase(passphrase);
    const keyText = await keyDecrypter.decrypt(readFileSync(path.join(root, manifest.id, 'key.age')), 'text');
    const backupKey = keyText.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-')) as string;
    const chunk = manifest.tables.find((t) => t.name === 'settings')?.chunks[0] as string;
    const fileDecrypter = new Decrypter();
    fileDecrypter.addIdentity(backupKey);
    const plain = gunzipSync(await fileDecrypter.decrypt(readFileSync(path.join(root, manifest.id, chunk))));
    expect(plain.toString()).toContain(canary);
    if (ageAvailable) {
      const keyFile = path.join(dir, `${manifest.id}.key`);
      writeFileSync(keyFile, `${backupKey}\n`);
      const opened = gunzipSync(
        execFileSync('age', ['-d', '-i', keyFile, path.join(root, manifest.id, chunk)]),
      );
      expect(opened.toString()).toContain(canary);
    }

    await expect(
      restoreBackup({
        target,
        backup: manifest.id,
        config: configFor(await freshDatabaseUrl(backend, dir), dir),
        keys: { identities: [], passphrases: ['wrong passphrase'] },
      }),
    ).rejects.toMatchObject({
      code: 'backup_decryption_failed',
      message: expect.stringContaining('wrong passphrase?'),
    });

    const quick = await verifyBackup({
      target,
      backup: manifest.id,
      mode: 'quick',
      keys: { identities: [], passphrases: [] },
    });
    expect(quick.ok).toBe(true);
    const intoUrl = await freshDatabaseUrl(backend, dir);
    await restoreBackup({
      target,
      backup: manifest.id,
      config: configFor(intoUrl, dir),
      keys: { identities: [], passphrases: [passphrase] },
    });
    const into = await openStore(configFor(intoUrl, dir));
    try {
      expect(withoutAudit(await dumpDatabase(into), 'backup.restore')).toEqual(before);
    } finally {
      await into.close();
    }
  });

  it('refuses to run when encryption is configured but its key is missing, and writes nothing', async () => {
    const { url } = await freshStore(backend, dir);
    const target = freshTarget(dir);
    const env = {
      ATHANOR_DATABASE_URL: url,
      ATHANOR_BACKUP_TARGET: target.url,
      ATHANOR_BACKUP_PASSPHRASE_FILE: path.join(dir, 'no-such-passphrase-file'),
    };
    const run = await runCli(['backup', 'create'], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cannot read ATHANOR_BACKUP_PASSPHRASE_FILE');
    expect(existsSync(target.url.slice('file:'.length))).toBe(false);
  });
});
