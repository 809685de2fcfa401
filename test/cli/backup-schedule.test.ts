import { expect, it } from 'vitest';
import { listBackups, scanTarget } from '../../src/ops/backup/backup-target.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';
import { freshTarget, populate } from '../ops/backup/fixtures.js';
import { spawnCli } from '../ops/backup/processes.js';
import { until } from '../helpers/until.js';

describeEachBackend('athanor backup schedule', (backend) => {
  const dir = tempDir();

  it('runs scheduled backups with their prune until SIGTERM, then stops cleanly', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 5 });
    const target = freshTarget(dir);
    const sidecar = spawnCli(
      [
        'backup',
        'schedule',
        '--schedule',
        '* * * * * *',
        '--drill-schedule',
        'off',
        '--keep',
        'last=2',
        '--json',
      ],
      { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url },
    );
    let output = '';
    sidecar.child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await until(
        'three scheduled backups',
        () => parseLines(output).filter((l) => l.event === 'backup.schedule.backup_done').length >= 3,
        30_000,
        5,
      );
    } finally {
      sidecar.child.kill('SIGTERM');
    }
    const exited = await sidecar.exited;
    expect(exited.code, exited.stderr).toBe(0);
    expect(exited.stderr).toContain('received SIGTERM');
    const events = parseLines(exited.stdout).map((l) => l.event);
    expect(events[0]).toBe('backup.schedule.started');
    expect(events.at(-1)).toBe('backup.schedule.stopped');
    expect(events).not.toContain('backup.schedule.failed');
    expect(await listBackups(target)).toHaveLength(2);
    // A stop waits for the run in progress: no backup is left half-written.
    for (const [id, keys] of await scanTarget(target)) expect(keys, id).toContain(`${id}/manifest.json`);
    const status = await runCli(['backup', 'status', '--max-age', '1h'], {
      env: { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: target.url },
    });
    expect(status.code, status.stderr).toBe(0);
  });

  it('refuses a schedule it cannot read, naming the flag', async () => {
    const { url } = await freshStore(backend, dir);
    const result = await runCli(['backup', 'schedule', '--schedule', 'every hour'], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--schedule: 'every hour' is not a cron schedule");
  });
});

/** The complete JSON lines of the sidecar's output. */
function parseLines(text: string): { event?: string }[] {
  return text
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as { event?: string });
}
