import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { getBlob } from '../../../src/objects/blob-store.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { readManifest } from '../../../src/ops/backup/backup-target.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir, testConfig } from '../../helpers/backends.js';
import { runCli } from '../../helpers/cli.js';
import { networkWithTasks, queueClients } from '../../helpers/queue.js';
import { startTestServer } from '../../helpers/server.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, dumpDatabase, fillAuditLog, populate, withoutAudit } from './fixtures.js';
import { spawnCli } from './processes.js';
import { until } from '../../helpers/until.js';
import { configDefaults } from '../../../src/config/resolve-config.js';

/** The entries of a tar file, in order, as the system `tar` lists them. */
function tarEntries(file: string): string[] {
  return execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

function extract(file: string, into: string): void {
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xf', file, '-C', into]);
}

/** A new, empty directory for one test's output file. */
function outputDir(dir: string, name: string): string {
  const out = path.join(dir, name);
  mkdirSync(out);
  return out;
}

const noKeys = { identities: [], passphrases: [] };
const text = async (stream: Readable) => Buffer.concat(await stream.toArray()).toString('utf8');

describeEachBackend('backup create --output', (backend) => {
  const dir = tempDir();

  it('writes one tar that extracts to a file: target, which verifies and restores', async () => {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 30 });
    const before = await dumpDatabase(store);
    const out = outputDir(dir, `round-trip-${backend}`);
    const output = path.join(out, 'backup.tar');
    const env = { ATHANOR_DATABASE_URL: url, ATHANOR_BACKUP_TARGET: undefined };

    // Small chunks: every table spans several files.
    const created = await runCli(['backup', 'create', '--output', output, '--chunk-size', '2048', '--json'], {
      env,
      cwd: dir,
    });
    expect(created.code, created.stderr).toBe(0);
    const summary = JSON.parse(created.stdout) as {
      id: string;
      output: string;
      outputSizeBytes: number;
      rows: number;
    };
    expect(summary.output).toBe(output);
    expect(summary.outputSizeBytes).toBe(statSync(output).size);
    expect(summary.rows).toBe(Object.values(before).reduce((n, rows) => n + rows.length, 0));
    // Nothing but the tar is left beside it: no .partial file, no temporary target.
    expect(readdirSync(out)).toEqual(['backup.tar']);

    const entries = tarEntries(output);
    expect(entries[0]).toBe('athanor-backup-target.json');
    expect(entries.at(-1)).toBe(`${summary.id}/manifest.json`);
    expect(entries.filter((e) => e.endsWith('manifest.json'))).toHaveLength(1);
    expect(entries.some((e) => e.startsWith('locks/') || e.includes('.athanor-tmp'))).toBe(false);

    const extracted = path.join(dir, `extracted-${backend}`);
    extract(output, extracted);
    const targetUrl = `file:${extracted}`;
    const manifest = await readManifest(openObjectStore(targetUrl), summary.id);
    expect(manifest.tables.some((t) => t.chunks.length > 1)).toBe(true);
    expect(entries.slice(1, -1).sort()).toEqual(manifest.files.map((f) => `${summary.id}/${f.path}`).sort());

    const verified = await runCli(['backup', 'verify', 'latest', '--target', targetUrl, '--json'], { env });
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ backupId: summary.id, mode: 'full', ok: true });

    const intoUrl = await freshDatabaseUrl(backend, dir);
    const restored = await runCli(
      ['backup', 'restore', 'latest', '--target', targetUrl, '--database-url', intoUrl, '--json'],
      { env },
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ backupId: summary.id, rows: summary.rows });
    const into = await openStore(configFor(intoUrl, dir));
    try {
      expect(withoutAudit(await dumpDatabase(into), 'backup.restore')).toEqual(before);
    } finally {
      await into.close();
    }
  });

  it('holds the packs of result blobs the manifest lists, before the manifest', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('export-tar');
    const claims = await compute.claim(id, { count: 2 });
    const shas: string[] = [];
    // Past the row limit: stored as blobs, not in their results rows.
    const bodyOf = (i: number) => `result ${i}`.padEnd(configDefaults.inlineResultMaxBytes + 1, '.');
    for (const [i, claim] of claims.entries()) {
      const body = Buffer.from(bodyOf(i));
      shas.push((await compute.submitResult(claim.task, claim.leaseToken, 'ok', body)).sha256);
    }
    const output = path.join(outputDir(dir, `blobs-${backend}`), 'backup.tar');
    const created = await runCli(['backup', 'create', '--output', output, '--json'], {
      env: {
        ATHANOR_DATABASE_URL: server.databaseUrl,
        ATHANOR_OBJECTS_URL: server.config.objectsUrl,
        ATHANOR_BACKUP_TARGET: undefined,
      },
    });
    expect(created.code, created.stderr).toBe(0);
    const { id: backupId } = JSON.parse(created.stdout) as { id: string };

    const entries = tarEntries(output);
    const packEntries = entries.filter((e) => e.startsWith('packs/'));
    expect(packEntries.sort()).toEqual([
      expect.stringMatching(new RegExp(`^packs/${backupId}\\.0\\.index\\.ndjson\\.(gz|zst)$`)),
      expect.stringMatching(new RegExp(`^packs/${backupId}\\.0\\.tar\\.(gz|zst)$`)),
    ]);
    expect(entries.at(-1)).toBe(`${backupId}/manifest.json`);

    const extracted = path.join(dir, `extracted-blobs-${backend}`);
    extract(output, extracted);
    const objectsUrl = `file:${path.join(dir, `objects-restored-${backend}`)}`;
    const result = await restoreBackup({
      target: openObjectStore(`file:${extracted}`),
      backup: 'latest',
      config: { ...testConfig(await freshDatabaseUrl(backend, dir), dir), objectsUrl },
      keys: noKeys,
    });
    expect(result.blobs).toEqual({ copied: 2, present: 0 });
    const objects = openObjectStore(objectsUrl);
    expect((await Promise.all(shas.map(async (sha) => text(await getBlob(objects, sha))))).sort()).toEqual([
      bodyOf(0),
      bodyOf(1),
    ]);
  });
});

describe('backup create --output [sqlite]', () => {
  const dir = tempDir();

  it('refuses an output path that exists and leaves the file untouched', async () => {
    const { url } = await freshStore('sqlite', dir);
    const out = outputDir(dir, 'exists');
    const output = path.join(out, 'backup.tar');
    writeFileSync(output, 'precious');
    const refused = await runCli(['backup', 'create', '--output', output], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${output} already exists`);
    expect(readFileSync(output, 'utf8')).toBe('precious');
    expect(readdirSync(out)).toEqual(['backup.tar']);
  });

  it('refuses --output together with --target (exit 2) and writes nothing', async () => {
    const { url } = await freshStore('sqlite', dir);
    const out = outputDir(dir, 'with-target');
    const refused = await runCli(
      [
        'backup',
        'create',
        '--output',
        path.join(out, 'backup.tar'),
        '--target',
        `file:${path.join(out, 't')}`,
      ],
      { env: { ATHANOR_DATABASE_URL: url } },
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--output and --target cannot be used together');
    expect(readdirSync(out)).toEqual([]);
  });

  it('tells the operator where the file is and how to use it; --verify packs its verdict', async () => {
    const { url } = await freshStore('sqlite', dir);
    const output = path.join(outputDir(dir, 'human'), 'backup.tar');
    const created = await runCli(['backup', 'create', '--output', output, '--verify'], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`written to ${output}`);
    expect(created.stdout).toContain('verified: ok');
    expect(created.stdout).toContain(`tar -xf ${output} -C <dir>`);
    expect(created.stdout).toContain('athanor backup restore latest --target file:<dir>');
    const entries = tarEntries(output);
    const id = entries.at(-1)?.split('/')[0];
    expect(entries).toContain(`${id}/verify.json`);
    const extracted = path.join(dir, 'extracted-human');
    extract(output, extracted);
    const listed = await runCli(['backup', 'list', '--target', `file:${extracted}`, '--json'], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(JSON.parse(listed.stdout)).toMatchObject([{ id, verification: { ok: true } }]);
    // The audit log names the tar file, not the temporary target it was packed from.
    const store = await openStore(configFor(url, dir));
    try {
      const audit = await store.db
        .selectFrom('audit_log')
        .select(['action', 'target'])
        .where('action', 'in', ['backup.create', 'backup.verify'])
        .orderBy('id')
        .execute();
      expect(audit).toEqual([
        { action: 'backup.create', target: `${output} ${id}` },
        { action: 'backup.verify', target: `${output} ${id}` },
      ]);
    } finally {
      await store.close();
    }
  });

  it('a failed backup leaves nothing behind', async () => {
    const out = outputDir(dir, 'failed');
    const output = path.join(out, 'backup.tar');
    // The database does not exist: the backup fails after the output was reserved.
    const failed = await runCli(['backup', 'create', '--output', output], {
      env: { ATHANOR_DATABASE_URL: `sqlite:${path.join(dir, 'missing', 'none.db')}` },
    });
    expect(failed.code).not.toBe(0);
    expect(readdirSync(out)).toEqual([]);
  });

  it('a tar cut short extracts to no backup', async () => {
    const { store, url } = await freshStore('sqlite', dir);
    await fillAuditLog(store, 2_000);
    const output = path.join(outputDir(dir, 'cut'), 'backup.tar');
    const created = await runCli(['backup', 'create', '--output', output, '--chunk-size', '16384'], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(created.code, created.stderr).toBe(0);
    // Cut at a block boundary past half the file: everything but the manifest is still there.
    truncateSync(output, Math.floor(statSync(output).size / 2 / 512) * 512);
    const extracted = path.join(dir, 'extracted-cut');
    mkdirSync(extracted);
    spawnSync('tar', ['-xf', output, '-C', extracted]);
    expect(readdirSync(extracted)).toContain('athanor-backup-target.json');
    const listed = await runCli(['backup', 'list', '--target', `file:${extracted}`, '--json'], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);
  });

  it('killed with SIGKILL while the backup is taken, leaves no file at the output path', async () => {
    const { store, url } = await freshStore('sqlite', dir);
    await fillAuditLog(store, 15_000);
    const out = outputDir(dir, 'killed');
    const output = path.join(out, 'backup.tar');
    const env = { ATHANOR_DATABASE_URL: url };
    const chunksWritten = () =>
      readdirSync(out)
        .filter((name) => name.startsWith('backup.tar.tmp-'))
        .flatMap((tmp) => readdirSync(path.join(out, tmp), { recursive: true, encoding: 'utf8' }))
        .filter((name) => name.includes('.ndjson.')).length;

    const run = spawnCli(['backup', 'create', '--output', output, '--chunk-size', '16384'], env);
    await until('the first chunks are written', () => chunksWritten() >= 5, 30_000, 5);
    run.child.kill('SIGKILL');
    const exit = await run.exited;
    expect(exit.signal, exit.stderr).toBe('SIGKILL');
    expect(existsSync(output)).toBe(false);

    // The next run does not write over what may be another run's partial file: it says what to do.
    const next = await runCli(['backup', 'create', '--output', output], { env });
    expect(next.code).toBe(1);
    expect(next.stderr).toContain(`${output}.partial exists`);
    expect(existsSync(output)).toBe(false);
  });
});
