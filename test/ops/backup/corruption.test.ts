import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { AthanorError } from '../../../src/domain/errors.js';
import { listBackups } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, dumpDatabase, freshTarget, populate, withoutAudit } from './fixtures.js';

const noKeys = { identities: [], passphrases: [] };

describeEachBackend('a corrupted backup', (backend) => {
  const dir = tempDir();

  it('one flipped byte in any file: verify names the file, restore refuses and changes nothing', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 60 });
    const target = freshTarget(dir);
    const root = target.url.slice('file:'.length);
    const { manifest } = await createBackup({
      config: configFor(url, dir),
      target,
      encryption: { mode: 'none' },
      chunkBytes: 4096,
    });
    const files = [...manifest.files.map((f) => f.path), 'manifest.json'];
    expect(files.length).toBeGreaterThan(6);

    const { store: into, url: intoUrl } = await freshStore(backend, dir);
    const before = await dumpDatabase(into);

    for (const file of files) {
      const location = path.join(root, manifest.id, file);
      const original = readFileSync(location);
      const flipped = Buffer.from(original);
      const at = Math.floor(flipped.length / 2);
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      writeFileSync(location, flipped);
      try {
        const quick = await verifyBackup({ target, backup: manifest.id, mode: 'quick', keys: noKeys });
        expect(quick.ok, file).toBe(false);
        expect(quick.problems.map((p) => p.file)).toEqual([file]);

        const error = await restoreBackup({
          target,
          backup: manifest.id,
          config: configFor(intoUrl, dir),
          keys: noKeys,
        }).catch((e: unknown) => e);
        expect(error, file).toBeInstanceOf(AthanorError);
        expect((error as AthanorError).code).toBe('backup_corrupt');
        expect((error as AthanorError).exitCode).toBe(3);
        expect((error as AthanorError).message).toContain(file);
        expect(withoutAudit(await dumpDatabase(into), 'backup.restore')).toEqual(before);

        if (file === 'manifest.json') {
          const [entry] = await listBackups(target);
          expect(entry?.manifest).toBeUndefined();
          expect(entry?.problem).toContain('manifest.json is corrupt');
        }
      } finally {
        writeFileSync(location, original);
      }
    }
    expect((await verifyBackup({ target, backup: manifest.id, mode: 'quick', keys: noKeys })).ok).toBe(true);
  });

  it('athanor backup verify exits 3 naming the damaged file, and records the verdict at the target', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 30 });
    const target = freshTarget(dir);
    const { manifest } = await createBackup({
      config: configFor(url, dir),
      target,
      encryption: { mode: 'none' },
    });
    const victim = manifest.files.find((f) => f.path.startsWith('tables/identities.'))?.path as string;
    const location = path.join(target.url.slice('file:'.length), manifest.id, victim);
    const bytes = readFileSync(location);
    writeFileSync(location, bytes.subarray(0, bytes.length - 1));

    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url };
    const run = await runCli(['backup', 'verify', manifest.id], { env });
    expect(run.code).toBe(3);
    expect(run.stdout).toContain(victim);
    expect(run.stderr).toContain(`failed verification: ${victim}`);
    const [entry] = await listBackups(target);
    expect(entry?.verification).toMatchObject({ ok: false, mode: 'full', problems: [{ file: victim }] });
    const audit = await store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'backup.verify')
      .execute();
    expect(audit.map((a) => a.outcome)).toEqual(['error']);
  });
});
