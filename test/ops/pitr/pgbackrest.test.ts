import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../../src/service/audit.js';
import { openStore } from '../../../src/store/open-store.js';
import { prepareDatabase } from '../../faults/processes.js';
import { until } from '../../helpers/until.js';
import { runCli } from '../../helpers/cli.js';
import type { PostgresCluster } from '../../helpers/postgres-cluster.js';
import { freePort, startPostgresCluster } from '../../helpers/postgres-cluster.js';

const available = spawnSync('pgbackrest', ['version']).status === 0;
if (!available) {
  if (process.env.CI === 'true')
    throw new Error('pgbackrest is missing; CI must run the PostgreSQL point-in-time tests');
  const banner = '!'.repeat(78);
  process.stderr.write(
    `\n${banner}\n!! SKIPPING the PostgreSQL point-in-time tests: pgbackrest is not installed.\n` +
      `!! Install it (Debian: apt-get install pgbackrest); under CI=true this is a failure.\n${banner}\n\n`,
  );
}

const asRoot = process.getuid?.() === 0;
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {
      // best effort
    }
  }
});

async function writeRows(databaseUrl: string, from: number, to: number) {
  const store = await openStore({ databaseUrl, busyTimeoutMs: 5000 });
  try {
    for (let n = from; n < to; n += 1)
      await recordAudit(store, { actor: 'test', action: 'test.write', target: `w${n}`, outcome: 'ok' });
  } finally {
    await store.close();
  }
}

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

describe.runIf(available)('PostgreSQL point-in-time recovery through pgBackRest', () => {
  it('archives WAL, restores exactly the rows committed before a time, goes red while archiving fails', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-pgbr-'));
    // The PostgreSQL OS user runs archive-push: it must reach the configuration and the repository.
    chmodSync(dir, 0o755);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const started = await startPostgresCluster();
    if ('unavailable' in started) throw new Error(started.unavailable);
    const cluster: PostgresCluster = started;
    cleanups.push(() => cluster.stop());
    await prepareDatabase(cluster.url);
    const env = {
      ATHANOR_DATABASE_URL: cluster.url,
      ATHANOR_DATA_DIR: path.join(dir, 'athanor'),
      ATHANOR_BACKUP_TARGET: `file:${path.join(dir, 'repo')}`,
      ATHANOR_PGBACKREST_CONFIG: path.join(dir, 'pgbackrest', 'pgbackrest.conf'),
    };

    const first = await runCli(['backup', 'pitr', 'setup'], { env });
    expect(first.stdout).toContain('restart it');
    expect(first.code).toBe(3);
    cluster.kill();
    cluster.start();
    const setup = await runCli(['backup', 'pitr', 'setup'], { env });
    expect(setup.stderr + setup.stdout).toContain('point-in-time recovery is on');
    expect(setup.code).toBe(0);

    await writeRows(cluster.url, 0, 200);
    // More than a second after the base backup stopped: pgBackRest counts its stop time in seconds.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const between = new Date();
    await new Promise((resolve) => setTimeout(resolve, 600));
    await writeRows(cluster.url, 200, 400);
    const check = await runCli(['backup', 'pitr', 'check'], { env });
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    const status = await runCli(['backup', 'pitr', 'status', '--json'], { env });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ engine: 'pgbackrest', ok: true, waitingWalFiles: 0 });

    // Bad input: exit 2, naming the flag.
    const early = await runCli(
      ['backup', 'restore', '--to-time', '2001-01-01T00:00:00Z', '--pg-data', path.join(dir, 'never')],
      { env },
    );
    expect(early.code).toBe(2);
    expect(early.stderr).toContain('--to-time 2001-01-01T00:00:00.000Z is before the oldest base backup');
    const future = await runCli(
      [
        'backup',
        'restore',
        '--to-time',
        new Date(Date.now() + 86_400_000).toISOString(),
        '--pg-data',
        path.join(dir, 'never'),
      ],
      { env },
    );
    expect(future.code).toBe(2);
    expect(future.stderr).toMatch(/--to-time .* is in the future/);
    const noRepository = await runCli(['backup', 'pitr', 'status'], {
      env: { ...env, ATHANOR_PGBACKREST_CONFIG: path.join(dir, 'nothing.conf') },
    });
    expect(noRepository.code).toBe(2);
    expect(noRepository.stderr).toContain('ATHANOR_PGBACKREST_CONFIG');

    const restoredDir = path.join(dir, 'restored');
    const port = await freePort();
    const restore = await runCli(
      [
        'backup',
        'restore',
        '--to-time',
        between.toISOString(),
        '--pg-data',
        restoredDir,
        '--pg-port',
        String(port),
        '--json',
      ],
      { env },
    );
    cleanups.push(() => {
      const pgCtl = path.join(
        path.dirname(
          execFileSync('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1']).toString().trim(),
        ),
        'pg_ctl',
      );
      const args = ['-D', restoredDir, '-m', 'immediate', 'stop'];
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args], { stdio: 'ignore' });
      else execFileSync(pgCtl, args, { stdio: 'ignore' });
    });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const result = JSON.parse(restore.stdout) as {
      port: number;
      schemaVersion: number;
      blobs: { missing: string[] };
    };
    expect(result.port).toBe(port);
    expect(result.blobs.missing).toEqual([]);
    const restoredUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const rows = await query<{ target: string }>(
      restoredUrl,
      "SELECT target FROM audit_log WHERE action = 'test.write'",
    );
    expect(new Set(rows.map((r) => r.target))).toEqual(
      new Set(Array.from({ length: 200 }, (_, n) => `w${n}`)),
    );
    const [version] = await query<{ v: number }>(
      restoredUrl,
      'SELECT max(id)::int AS v FROM athanor_migrations',
    );
    expect(version?.v).toBe(result.schemaVersion);

    // The fault: the repository's disk goes away. Status goes red; PostgreSQL keeps the WAL, and
    // once the repository is back every file reaches it.
    const repository = path.join(dir, 'repo', 'pitr', 'postgres');
    renameSync(repository, `${repository}-away`);
    try {
      await writeRows(cluster.url, 400, 450);
      await query(cluster.url, 'SELECT pg_switch_wal()');
      await until(
        'status to go red',
        async () => {
          const answer = await runCli(['backup', 'pitr', 'status'], { env });
          return answer.code === 3 && answer.stderr.includes('WAL archiving is failing');
        },
        60_000,
      );
      const red = await runCli(['backup', 'pitr', 'status'], { env });
      expect(red.stdout + red.stderr).toContain('WAL archiving is failing');
    } finally {
      renameSync(`${repository}-away`, repository);
    }
    await until(
      'archiving to recover',
      async () => (await runCli(['backup', 'pitr', 'check'], { env })).code === 0,
      90_000,
    );
    const [waiting] = await query<{ n: number }>(
      cluster.url,
      "SELECT count(*)::int AS n FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
    );
    expect(waiting?.n).toBe(0);
  }, 180_000);
});
