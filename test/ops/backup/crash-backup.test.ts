import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { listBackups, scanTarget } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, fillAuditLog, freshTarget } from './fixtures.js';
import { spawnCli } from './processes.js';
import { until } from '../../helpers/until.js';

// Small chunks make a backup of this database a few hundred files: slow enough to kill half-way.
const chunkSize = '16384';

describeEachBackend('a backup process that dies', (backend) => {
  const dir = tempDir();

  it('killed with SIGKILL at any point is never listed as complete, and the next backup succeeds', async () => {
    const { store, url } = await freshStore(backend, dir);
    await fillAuditLog(store, 15_000);
    const target = freshTarget(dir);
    const root = target.url.slice('file:'.length);
    const { manifest: baseline } = await createBackup({
      config: configFor(url, dir),
      target,
      encryption: { mode: 'none' },
      chunkBytes: Number(chunkSize),
    });
    const chunks = baseline.files.length;
    expect(chunks).toBeGreaterThan(100);
    const newChunks = () =>
      readdirSync(root)
        .filter((name) => name !== baseline.id && existsSync(path.join(root, name, 'tables')))
        .reduce((n, name) => n + readdirSync(path.join(root, name, 'tables')).length, 0);
    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url };

    const killPoints = [
      { name: 'the lease is taken', ready: () => existsSync(path.join(root, 'locks', 'writer.json')) },
      { name: 'the first chunk is written', ready: () => newChunks() >= 1 },
      { name: 'half the chunks are written', ready: () => newChunks() >= chunks / 2 },
    ];
    for (const point of killPoints) {
      const before = newChunks();
      const run = spawnCli(['backup', 'create', '--chunk-size', chunkSize], env);
      await until(point.name, async () => point.ready() && newChunks() >= before, 30_000, 5);
      run.child.kill('SIGKILL');
      const exit = await run.exited;
      expect(exit.signal, `${point.name}: ${exit.stderr}`).toBe('SIGKILL');
      expect((await listBackups(target)).map((b) => b.id)).toEqual([baseline.id]);
      // The dead process's lease is still there: the next backup must take it over.
      expect(existsSync(path.join(root, 'locks', 'writer.json'))).toBe(true);
    }
    expect(newChunks()).toBeGreaterThanOrEqual(chunks / 2);

    const next = await runCli(['backup', 'create', '--chunk-size', chunkSize, '--json'], { env });
    expect(next.code, next.stderr).toBe(0);
    const { id } = JSON.parse(next.stdout) as { id: string };
    expect((await listBackups(target)).map((b) => b.id)).toEqual([baseline.id, id]);
    expect((await runCli(['backup', 'verify', id, '--quick'], { env })).code).toBe(0);

    // Prune clears what the killed processes left behind, and keeps both complete backups.
    const incomplete = [...(await scanTarget(target)).keys()].filter((d) => d !== baseline.id && d !== id);
    expect(incomplete.length).toBeGreaterThanOrEqual(2);
    const prune = await runCli(['backup', 'prune', '--keep-last', '5', '--yes', '--json'], { env });
    expect(prune.code, prune.stderr).toBe(0);
    expect((JSON.parse(prune.stdout) as { incomplete: string[] }).incomplete.sort()).toEqual(
      incomplete.sort(),
    );
    expect([...(await scanTarget(target)).keys()]).toEqual([baseline.id, id]);
  });

  it('two backups started together: one completes, the other exits 5 naming the holder', async () => {
    const { store, url } = await freshStore(backend, dir);
    await fillAuditLog(store, 15_000);
    const target = freshTarget(dir);
    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url };
    const runs = [0, 1].map(() => spawnCli(['backup', 'create', '--chunk-size', chunkSize], env));
    const exits = await Promise.all(runs.map((r) => r.exited));
    expect(exits.map((e) => e.code).sort(), exits.map((e) => e.stderr).join('\n')).toEqual([0, 5]);
    const loser = exits.find((e) => e.code === 5);
    expect(loser?.stderr).toMatch(
      /backup target .* is busy: backup \d{8}T\d{6}Z-[0-9a-f]{6} by .* \(pid \d+/,
    );
    expect(await listBackups(target)).toHaveLength(1);
    const audit = await store.db
      .selectFrom('audit_log')
      .select(['outcome', 'details'])
      .where('action', '=', 'backup.create')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.outcome).sort()).toEqual(['error', 'ok']);
    expect(audit.find((a) => a.outcome === 'error')?.details).toContain('lock_timeout');
  });
});
