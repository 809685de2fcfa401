import { expect, it } from 'vitest';
import { createBackup } from '../../src/ops/backup/create-backup.js';
import { verifyBackup } from '../../src/ops/backup/verify-backup.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';
import { configFor, freshTarget, populate } from '../ops/backup/fixtures.js';

const hour = 3_600_000;

describeEachBackend('athanor backup status', (backend) => {
  const dir = tempDir();

  async function setup() {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 5 });
    const target = freshTarget(dir);
    const status = (...args: string[]) =>
      runCli(['backup', 'status', ...args], {
        env: { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url },
      });
    const backupAt = async (at: Date) =>
      (
        await createBackup({
          config: configFor(url, dir),
          target,
          encryption: { mode: 'none' },
          now: () => at,
        })
      ).manifest.id;
    return { target, status, backupAt };
  }

  it('exits 3 when there is no backup, and names what to do', async () => {
    const { status } = await setup();
    const result = await status();
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('there is no complete backup');
    expect(result.stderr).toContain("'athanor backup create'");
    expect(result.stdout).toMatch(/newest backup\s+none/);
  });

  it('exits 0 for a backup younger than --max-age and 3 for an older one', async () => {
    const { status, backupAt } = await setup();
    const id = await backupAt(new Date(Date.now() - 30 * hour));

    const stale = await status();
    expect(stale.code).toBe(3);
    expect(stale.stderr).toContain(id);
    expect(stale.stderr).toContain('1d 6h old, older than 26h');
    expect((await status('--max-age', '2d')).code).toBe(0);

    const json = await status('--max-age', '90m', '--json');
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      maxAgeSeconds: 5400,
      backups: 1,
      newest: { id },
      newestVerified: null,
    });

    const fresh = await backupAt(new Date());
    const ok = await status('--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, backups: 2, newest: { id: fresh } });
    const text = await status('--max-age', '90m');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`newest backup    ${fresh}`);
  });

  it('--verified counts only backups that passed a full verify', async () => {
    const { target, status, backupAt } = await setup();
    const old = await backupAt(new Date(Date.now() - 3 * hour));
    await backupAt(new Date());
    expect((await status()).code).toBe(0);
    const none = await status('--verified');
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('there is no verified backup');
    expect(none.stderr).toContain("'athanor backup verify'");

    const keys = { identities: [], passphrases: [] };
    expect((await verifyBackup({ target, backup: old, mode: 'quick', keys })).ok).toBe(true);
    expect((await status('--verified')).code).toBe(3);
    expect((await verifyBackup({ target, backup: old, mode: 'full', keys })).ok).toBe(true);
    expect((await status('--verified', '--max-age', '4h')).code).toBe(0);
    const tooOld = await status('--verified', '--max-age', '2h');
    expect(tooOld.code).toBe(3);
    expect(tooOld.stderr).toContain(`verified backup at ${target.url} (${old}) is 3h old`);
  });

  it('refuses a duration it cannot read with a usage error', async () => {
    const { status } = await setup();
    const result = await status('--max-age', '26 hours');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--max-age takes a duration like 90m, 26h or 7d');
  });
});
