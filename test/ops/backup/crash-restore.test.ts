import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { getMaintenance } from '../../../src/ops/maintenance.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, dumpDatabase, fillAuditLog, freshTarget, populate, withoutAudit } from './fixtures.js';
import { spawnCli } from './processes.js';
import { until } from '../../helpers/until.js';

describeEachBackend('a restore that dies half-way', (backend) => {
  const dir = tempDir();

  it('killed with SIGKILL while loading rows, leaves the target database as it was, in maintenance', async () => {
    const { store: source, url: sourceUrl } = await freshStore(backend, dir);
    // Enough rows that the load outlasts the time between noticing it and the kill on a busy machine.
    await fillAuditLog(source, 150_000);
    const backedUp = await dumpDatabase(source);
    const target = freshTarget(dir);
    const { manifest } = await createBackup({
      config: configFor(sourceUrl, dir),
      target,
      encryption: { mode: 'none' },
    });

    const { store: victim, url } = await freshStore(backend, dir);
    await populate(victim, { rows: 20 });
    const before = await dumpDatabase(victim);
    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url };

    let loading: () => Promise<boolean>;
    let settled: () => Promise<boolean> = async () => true;
    let client: pg.Client | undefined;
    if (backend === 'sqlite') {
      const file = url.slice('sqlite:'.length);
      const temporaryWal = () =>
        readdirSync(path.dirname(file)).filter(
          (f) => f.startsWith(`${path.basename(file)}.restore-`) && f.endsWith('-wal'),
        );
      loading = async () =>
        temporaryWal().some((f) => statSync(path.join(path.dirname(file), f)).size > 512 * 1024);
    } else {
      client = new pg.Client({ connectionString: url });
      await client.connect();
      const database = new URL(url).pathname.slice(1);
      const count = async (filter: string) =>
        Number(
          (
            await client!.query<{ n: string }>(
              `select count(*) as n from pg_stat_activity where datname = $1 and application_name = 'athanor' ${filter}`,
              [database],
            )
          ).rows[0]?.n,
        );
      // Rows load with one COPY per table; audit_log is the big table here.
      loading = async () => (await count(`and query like '%copy "audit_log"%from stdin%'`)) > 0;
      // The server aborts the transaction when it notices the client is gone.
      settled = async () => (await count('')) === 0;
    }
    try {
      const run = spawnCli(['backup', 'restore', manifest.id, '--force', '--yes'], env);
      await until('the restore to be loading rows', loading, 30_000, 5);
      run.child.kill('SIGKILL');
      expect((await run.exited).signal).toBe('SIGKILL');
      await until('the killed restore to be gone', settled, 30_000, 5);
    } finally {
      await client?.end();
    }

    const reopened = await openStore(configFor(url, dir));
    try {
      // Maintenance mode stays on, so servers on this database keep refusing writes until an
      // operator looks; it and the safety backup, taken before the load began, are the only changes.
      expect(await getMaintenance(reopened)).toMatchObject({
        on: true,
        reason: `restoring backup ${manifest.id}`,
      });
      const dump = withoutAudit(
        withoutAudit(await dumpDatabase(reopened), 'backup.create'),
        'maintenance.on',
      );
      dump.settings = (dump.settings ?? []).filter((row) => (row as { key: string }).key !== 'maintenance');
      expect(dump).toEqual(before);
    } finally {
      await reopened.close();
    }

    // Nothing is left locked: the same restore, run to the end, replaces the database.
    const again = await runCli(['backup', 'restore', manifest.id, '--force', '--yes', '--json'], { env });
    expect(again.code, again.stderr).toBe(0);
    const restored = await openStore(configFor(url, dir));
    try {
      expect(withoutAudit(await dumpDatabase(restored), 'backup.restore')).toEqual(backedUp);
      expect((await getMaintenance(restored)).on).toBe(false);
      if (backend === 'sqlite') {
        const file = url.slice('sqlite:'.length);
        expect(readdirSync(path.dirname(file)).filter((f) => f.includes('.restore-'))).toEqual([]);
      }
    } finally {
      await restored.close();
    }
  });
});
