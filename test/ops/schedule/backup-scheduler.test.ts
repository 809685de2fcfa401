import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { listBackups, readVerification } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { backupLastSuccess, backupLastVerified } from '../../../src/ops/metrics.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, freshTarget, populate } from '../backup/fixtures.js';
import { gaugeValue, keysUnder, runCount, watchedScheduler } from './scheduler-fixtures.js';
import { until } from '../../helpers/until.js';

const everySecond = '* * * * * *';

describeEachBackend('backup scheduler', (backend) => {
  const dir = tempDir();

  it('backs up at each slot and prunes by the retention policy after each backup', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 10 });
    const target = freshTarget(dir);
    const okBefore = await runCount('backup', 'ok');
    const prunedBefore = await runCount('prune', 'ok');
    const { scheduler, results } = watchedScheduler({
      store,
      config: configFor(url, dir),
      target,
      schedule: everySecond,
      retention: { keepLast: 2 },
    });
    try {
      await until(
        'three scheduled backups',
        () => results.filter((r) => r.outcome === 'ok').length >= 3,
        30_000,
        5,
      );
    } finally {
      await scheduler.stop();
    }
    const made = results.filter((r) => r.outcome === 'ok');
    expect(results.filter((r) => r.outcome === 'error')).toEqual([]);
    // Each slot's backup, then the prune: only the two newest remain.
    const kept = (await listBackups(target)).map((b) => b.id);
    expect(kept).toEqual(made.slice(-2).map((r) => r.backupId));
    expect(made.flatMap((r) => r.removed ?? [])).toEqual(made.slice(0, -2).map((r) => r.backupId));
    for (const entry of await listBackups(target)) {
      const result = made.find((r) => r.backupId === entry.id);
      expect(entry.manifest?.reason).toBe(`scheduled ${result?.slot}`);
    }
    expect(await runCount('backup', 'ok')).toBe(okBefore + made.length);
    expect(await runCount('prune', 'ok')).toBe(prunedBefore + made.length);
    const newest = (await listBackups(target)).at(-1);
    expect(await gaugeValue(backupLastSuccess)).toBe((newest?.createdAt.getTime() ?? 0) / 1000);
    // Each slot was claimed at the target under its own key.
    const claims = await keysUnder(target, 'schedule/slots/backup/');
    for (const r of made) expect(claims).toContain(`schedule/slots/backup/${r.slot}`);
  });

  it('a failing target is logged, counted, audited and retried while the scheduler keeps running', async () => {
    const { store, url } = await freshStore(backend, dir);
    const blocker = path.join(dir, `not-a-directory-${backend}`);
    writeFileSync(blocker, 'a regular file where the target directory should be\n');
    const targetUrl = `file:${path.join(blocker, 'backups')}`;
    const errorsBefore = await runCount('backup', 'error');
    const { scheduler, results, logs } = watchedScheduler({
      store,
      config: configFor(url, dir),
      target: openObjectStore(targetUrl),
      schedule: everySecond,
      retention: { keepLast: 2 },
    });
    try {
      // A second failure at a later slot shows the first one did not stop the scheduler.
      await until(
        'two failed slots',
        () => results.filter((r) => r.outcome === 'error').length >= 2,
        30_000,
        5,
      );
      const status = await runCli(['backup', 'status', '--target', targetUrl], {
        env: { ATHANOR_DATABASE_URL: url },
      });
      expect(status.code, status.stderr).toBe(3);
      expect(status.stderr).toContain('there is no complete backup');
      expect(status.stderr).toContain("'athanor backup create'");
    } finally {
      await scheduler.stop();
    }
    const failures = results.filter((r) => r.outcome === 'error');
    expect(new Set(failures.map((r) => r.slot)).size).toBe(failures.length);
    expect(await runCount('backup', 'error')).toBe(errorsBefore + failures.length);
    expect(logs.filter((l) => l.fields.event === 'backup.schedule.failed').length).toBe(failures.length);
    const audited = await store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'backup.schedule')
      .execute();
    expect(audited.length).toBe(failures.length);
    expect(audited.every((row) => row.outcome === 'error')).toBe(true);
    expect(JSON.parse(audited[0]?.details ?? '{}')).toMatchObject({ kind: 'backup', code: 'internal' });
  });

  it('the drill restores the newest backup into a scratch database and exports when it passed', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 10 });
    const target = freshTarget(dir);
    const config = configFor(url, dir);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    const drillsBefore = await runCount('drill', 'ok');
    const { scheduler, results } = watchedScheduler({ store, config, target, drillSchedule: everySecond });
    try {
      await until(
        'a restore drill',
        () => results.some((r) => r.kind === 'drill' && r.outcome === 'ok'),
        30_000,
        5,
      );
    } finally {
      await scheduler.stop();
    }
    expect(results.every((r) => r.backupId === manifest.id)).toBe(true);
    expect(await readVerification(target, manifest.id, 'full')).toMatchObject({ ok: true, mode: 'full' });
    expect(await runCount('drill', 'ok')).toBeGreaterThan(drillsBefore);
    const takenAt = (await listBackups(target))[0]?.createdAt.getTime() ?? 0;
    expect(await gaugeValue(backupLastVerified)).toBe(takenAt / 1000);
  });

  it('starts its gauges from the target, and runNow takes a backup outside the schedule', async () => {
    const { store, url } = await freshStore(backend, dir);
    const target = freshTarget(dir);
    const config = configFor(url, dir);
    const dayAgo = new Date(Date.now() - 86_400_000);
    await createBackup({ config, target, encryption: { mode: 'none' }, now: () => dayAgo });
    backupLastSuccess.set(0);
    backupLastVerified.set(12345);
    const { scheduler } = watchedScheduler({ store, config, target });
    try {
      await scheduler.ready;
      expect(await gaugeValue(backupLastSuccess)).toBe(Math.floor(dayAgo.getTime() / 1000));
      // Nothing at this target passed a full verify.
      expect(await gaugeValue(backupLastVerified)).toBe(0);
      expect(scheduler.nextRun('backup')).toBeUndefined();
      const result = await scheduler.runNow('backup');
      expect(result).toMatchObject({ kind: 'backup', outcome: 'ok', slot: undefined });
      expect((await listBackups(target)).map((b) => b.id)).toContain(result.backupId);
      expect(await gaugeValue(backupLastSuccess)).toBeGreaterThan(dayAgo.getTime() / 1000);
    } finally {
      await scheduler.stop();
    }
  });
});
