import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { UserClient } from '../../../src/client/user-client.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { SqliteReplicator } from '../../../src/ops/pitr/sqlite-replicator.js';
import { recordAudit } from '../../../src/service/audit.js';
import { sqliteDatabaseUrl } from '../../../src/domain/database-url.js';
import { openStore } from '../../../src/store/open-store.js';
import { faultIdentities, prepareDatabase, startAthanor } from '../../faults/processes.js';
import { until } from '../../helpers/until.js';
import { runCli } from '../../helpers/cli.js';
import { freePort } from '../../helpers/postgres-cluster.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-pitr-test-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const hasGeneration = (target: string) => {
  const root = path.join(target, 'pitr', 'sqlite');
  return existsSync(root) && readdirSync(root).some((g) => existsSync(path.join(root, g, 'generation.json')));
};

async function networkNames(databaseUrl: string): Promise<Set<string>> {
  const store = await openStore({ databaseUrl, busyTimeoutMs: 5000 });
  try {
    return new Set((await store.db.selectFrom('networks').select('name').execute()).map((r) => r.name));
  } finally {
    await store.close();
  }
}

async function auditTargets(databaseUrl: string): Promise<Set<string>> {
  const store = await openStore({ databaseUrl, busyTimeoutMs: 5000 });
  try {
    const rows = await store.db
      .selectFrom('audit_log')
      .select('target')
      .where('action', '=', 'test.write')
      .execute();
    return new Set(rows.map((r) => r.target ?? ''));
  } finally {
    await store.close();
  }
}

describe('SQLite continuous replication', () => {
  it('loses at most the last second of acknowledged writes when the server is killed and its disk lost', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    const target = path.join(dir, 'target');
    const databaseUrl = sqliteDatabaseUrl(path.join(dataDir, 'athanor.db'));
    await prepareDatabase(databaseUrl);
    const port = await freePort();
    const env = {
      ATHANOR_DATA_DIR: dataDir,
      ATHANOR_DATABASE_URL: databaseUrl,
      ATHANOR_BACKUP_TARGET: `file:${target}`,
      ATHANOR_PITR: '1',
    };
    const serve = startAthanor(['serve', '--port', String(port)], env);
    const url = `http://127.0.0.1:${port}`;
    await until('the first replica generation', async () => hasGeneration(target), 30_000);
    await until('serve to listen', async () => (await fetch(`${url}/readyz`)).status === 200, 30_000);

    const user = new UserClient({
      url,
      identifier: faultIdentities.user.identifier,
      key: faultIdentities.user.key,
    });
    const acknowledged = new Map<string, number>();
    const failures: string[] = [];
    let stop = false;
    let next = 0;
    const writer = async () => {
      while (!stop) {
        const name = `n${next++}`;
        try {
          await user.submitNetwork({
            scope: 'org-camp-proj',
            name,
            transformations: [{ name: 't', protocol: 'echo', inputs: { name } }],
          });
          acknowledged.set(name, Date.now());
        } catch (error) {
          // The kill: unacknowledged writes are not counted.
          if (!stop) failures.push(String(error));
        }
      }
    };
    // Beside the API's writes, a second process commits as fast as it can to the same file: the
    // replicator ships every commit in the file, whoever made it.
    const direct = await openStore({ databaseUrl, busyTimeoutMs: 5000 });
    const directAcknowledged = new Map<string, number>();
    const directWriter = async () => {
      for (let n = 0; !stop; n += 1) {
        try {
          await recordAudit(direct, { actor: 'test', action: 'test.write', target: `d${n}`, outcome: 'ok' });
          directAcknowledged.set(`d${n}`, Date.now());
        } catch (error) {
          failures.push(String(error));
        }
        // The driver is synchronous: let timers and the API writers run between commits. The load
        // is held near 1000 commits/s (5× the goal's 200): unbounded, one writer reached 8,500/s
        // and outran the replicator on a loaded machine (lag 1.6 s).
        const ahead = n - (Date.now() - loadStarted) * directCommitsPerMs;
        await new Promise((resolve) => (ahead > 0 ? setTimeout(resolve, 1) : setImmediate(resolve)));
      }
    };
    const directCommitsPerMs = 1;
    const loadStarted = Date.now();
    const writers = [...Array.from({ length: 4 }, () => writer()), directWriter()];
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const killedAt = Date.now();
    serve.child.kill('SIGKILL');
    stop = true;
    await serve.exited;
    await Promise.all(writers);
    await direct.close();
    // Commits acknowledged after the kill are not the server's to protect.
    for (const [name, at] of directAcknowledged) if (at > killedAt) directAcknowledged.delete(name);
    const commitsPerSecond =
      ((acknowledged.size + directAcknowledged.size) * 1000) / (killedAt - loadStarted);
    console.log(serve.log());
    console.log(`writes refused before the kill: ${failures.length} ${failures.slice(0, 3).join('; ')}`);
    rmSync(dataDir, { recursive: true, force: true });

    const restore = await runCli(['backup', 'restore', '--to-time', new Date().toISOString(), '--json'], {
      env,
    });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const restoredNames = await networkNames(databaseUrl);
    const restoredWrites = await auditTargets(databaseUrl);
    const lost = [
      ...[...acknowledged].filter(([name]) => !restoredNames.has(name)),
      ...[...directAcknowledged].filter(([name]) => !restoredWrites.has(name)),
    ];
    const lostSpanMs = lost.length === 0 ? 0 : killedAt - Math.min(...lost.map(([, at]) => at));
    console.log(
      `SQLite replication: ${acknowledged.size + directAcknowledged.size} acknowledged (${commitsPerSecond.toFixed(0)}/s), ${lost.length} lost, ` +
        `oldest lost acknowledged ${lostSpanMs} ms before the kill`,
    );
    expect(commitsPerSecond).toBeGreaterThanOrEqual(200);
    // Nothing restored that was never submitted, and nothing acknowledged more than 1 s before the kill lost.
    for (const name of restoredNames) expect(name).toMatch(/^n\d+$/);
    expect(lostSpanMs).toBeLessThanOrEqual(1000);
  }, 120_000);

  it('restores exactly the transactions before a time, and refuses bad times and wrong keys', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'athanor.db');
    const databaseUrl = sqliteDatabaseUrl(file);
    await prepareDatabase(databaseUrl);
    const identity = await generateX25519Identity();
    const wrongIdentity = await generateX25519Identity();
    writeFileSync(path.join(dir, 'right.key'), `${identity}\n`);
    writeFileSync(path.join(dir, 'wrong.key'), `${wrongIdentity}\n`);
    const targetDir = path.join(dir, 'target');
    const store = await openStore({ databaseUrl, busyTimeoutMs: 5000 }, { backgroundCheckpoints: true });
    const replicator = new SqliteReplicator({
      databaseFile: file,
      target: openObjectStore(`file:${targetDir}`),
      encryption: { mode: 'recipients', recipients: [await identityToRecipient(identity)] },
      intervalMs: 50,
    });
    await replicator.start();
    const write = (n: number) =>
      recordAudit(store, { actor: 'test', action: 'test.write', target: `w${n}`, outcome: 'ok' });
    for (let n = 0; n < 300; n += 1) await write(n);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const between = new Date();
    await new Promise((resolve) => setTimeout(resolve, 400));
    for (let n = 300; n < 500; n += 1) await write(n);
    await replicator.flush();
    await replicator.stop();
    await store.close();

    const restoredFile = path.join(dir, 'restored', 'athanor.db');
    const env = {
      ATHANOR_DATA_DIR: path.join(dir, 'restored'),
      ATHANOR_BACKUP_TARGET: `file:${targetDir}`,
      ATHANOR_BACKUP_AGE_IDENTITY_FILE: path.join(dir, 'right.key'),
    };
    const restore = await runCli(['backup', 'restore', '--to-time', between.toISOString()], { env });
    expect(restore.stderr).toContain('restart servers');
    expect(restore.code).toBe(0);
    const restored = await openStore({ databaseUrl: sqliteDatabaseUrl(restoredFile), busyTimeoutMs: 5000 });
    const targets = (
      await restored.db.selectFrom('audit_log').select('target').where('action', '=', 'test.write').execute()
    ).map((r) => r.target);
    await restored.close();
    expect(targets.length).toBe(300);
    expect(new Set(targets)).toEqual(new Set(Array.from({ length: 300 }, (_, n) => `w${n}`)));

    const elsewhere = { ...env, ATHANOR_DATA_DIR: path.join(dir, 'other') };
    const future = await runCli(
      ['backup', 'restore', '--to-time', new Date(Date.now() + 3_600_000).toISOString()],
      {
        env: elsewhere,
      },
    );
    expect(future.code).toBe(2);
    expect(future.stderr).toMatch(/--to-time .* is in the future/);
    const early = await runCli(['backup', 'restore', '--to-time', '2001-01-01T00:00:00Z'], {
      env: elsewhere,
    });
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/--to-time 2001-01-01T00:00:00.000Z is before the oldest point/);
    const notTime = await runCli(['backup', 'restore', '--to-time', 'yesterday'], { env: elsewhere });
    expect(notTime.code).toBe(2);
    expect(notTime.stderr).toContain("--to-time 'yesterday' is not an ISO 8601 time");
    const wrongKey = await runCli(['backup', 'restore', '--to-time', between.toISOString()], {
      env: { ...elsewhere, ATHANOR_BACKUP_AGE_IDENTITY_FILE: path.join(dir, 'wrong.key') },
    });
    expect(wrongKey.code).toBe(4);
    expect(wrongKey.stderr).toContain('ATHANOR_BACKUP_AGE_IDENTITY_FILE');
    const noReplica = await runCli(['backup', 'restore', '--to-time', between.toISOString()], {
      env: { ...elsewhere, ATHANOR_BACKUP_TARGET: `file:${path.join(dir, 'empty')}` },
    });
    expect(noReplica.code).toBe(1);
    expect(noReplica.stderr).toContain('no point-in-time replica');
    expect(existsSync(path.join(dir, 'other', 'athanor.db'))).toBe(false);
  }, 120_000);
});
