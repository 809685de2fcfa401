// `npm run bench -- pitr`: continuous SQLite replication. The write throughput of one writer
// committing small transactions with replication off and on (rounds alternate off/on, then on/off,
// same process layout), the replication lag sampled every 20 ms while it runs (p50, p99: how long
// a commit waits before it is durable at the target, the RPO), and the time of `backup restore
// --to-time` from a replica of BENCH_ROWS rows. Goals (issue 29): cost ≤ 10 %, lag p99 ≤ 1 s.
// Environment: BENCH_QUICK=1 (about a minute), BENCH_SECONDS (per round; default 10, quick 4),
// BENCH_REPEATS (off/on pairs; default 3, quick 2), BENCH_ROWS (rows of the restore run; default
// 100000, quick 20000).
import { execFileSync } from 'node:child_process';
import { clearInterval, setImmediate, setInterval } from 'node:timers';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openObjectStore } from '../dist/objects/open-object-store.js';
import { SqliteReplicator } from '../dist/ops/pitr/sqlite-replicator.js';
import { recordAudit } from '../dist/service/audit.js';
import { sqliteDatabaseUrl } from '../dist/store/database-url.js';
import { migrate } from '../dist/store/migrator.js';
import { openStore } from '../dist/store/open-store.js';

const quick = process.env.BENCH_QUICK === '1';
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 4 : 10));
const repeats = Number(process.env.BENCH_REPEATS ?? (quick ? 2 : 3));
const restoreRows = Number(process.env.BENCH_ROWS ?? (quick ? 20_000 : 100_000));
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-pitr-'));
const cli = path.resolve(import.meta.dirname, '../dist/cli/main.js');
const quantile = (values, q) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

async function freshDatabase(name) {
  const file = path.join(root, name, 'athanor.db');
  mkdirSync(path.dirname(file), { recursive: true });
  const store = await openStore(
    { databaseUrl: sqliteDatabaseUrl(file), busyTimeoutMs: 5000 },
    { create: true, backgroundCheckpoints: true },
  );
  await migrate(store, { lockTimeoutMs: 10_000 });
  return { file, store };
}

async function round(replicated, index) {
  const { file, store } = await freshDatabase(`round-${index}-${replicated ? 'on' : 'off'}`);
  const target = path.join(root, `target-${index}`);
  const replicator = replicated
    ? new SqliteReplicator({
        databaseFile: file,
        target: openObjectStore(`file:${target}`),
        encryption: { mode: 'none' },
      })
    : undefined;
  await replicator?.start();
  const lags = [];
  const sampler = replicator ? setInterval(() => lags.push(replicator.status().lagMs), 20) : undefined;
  let commits = 0;
  const end = Date.now() + seconds * 1000;
  const cpuBefore = process.cpuUsage();
  while (Date.now() < end) {
    await recordAudit(store, { actor: 'bench', action: 'bench.write', target: `w${commits}`, outcome: 'ok' });
    commits += 1;
    // The driver is synchronous: let the replicator's timer run between commits, as a server's would.
    if (commits % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const cpu = process.cpuUsage(cpuBefore);
  if (sampler) clearInterval(sampler);
  await replicator?.flush();
  await replicator?.stop();
  await store.close();
  return {
    replicated,
    commitsPerSecond: commits / seconds,
    cpuMsPerCommit: (cpu.user + cpu.system) / 1000 / commits,
    lagP50Ms: quantile(lags, 0.5),
    lagP99Ms: quantile(lags, 0.99),
    lagMaxMs: Math.max(0, ...lags),
  };
}

const rounds = [];
for (let i = 0; i < repeats; i += 1) {
  const order = i % 2 === 0 ? [false, true] : [true, false];
  for (const replicated of order) rounds.push(await round(replicated, rounds.length));
}
const mean = (rs, key) => rs.reduce((sum, r) => sum + r[key], 0) / rs.length;
const off = rounds.filter((r) => !r.replicated);
const on = rounds.filter((r) => r.replicated);

// Restore: a replica of restoreRows rows (written in transactions of 500), restored to now.
const { file, store } = await freshDatabase('restore-source');
const restoreTarget = path.join(root, 'restore-target');
const replicator = new SqliteReplicator({
  databaseFile: file,
  target: openObjectStore(`file:${restoreTarget}`),
  encryption: { mode: 'none' },
});
await replicator.start();
for (let n = 0; n < restoreRows; n += 500) {
  await store.transaction(async (trx) => {
    for (let k = n; k < Math.min(restoreRows, n + 500); k += 1)
      await trx
        .insertInto('audit_log')
        .values({
          at: new Date().toISOString(),
          actor: 'bench',
          action: 'bench.row',
          target: `r${k}`,
          outcome: 'ok',
          details: null,
        })
        .execute();
  });
  if (n % 5000 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
}
await replicator.flush();
await replicator.stop();
await store.close();
const restoreStarted = performance.now();
execFileSync(process.execPath, [cli, 'backup', 'restore', '--to-time', new Date().toISOString(), '--json'], {
  env: {
    ...process.env,
    ATHANOR_DATA_DIR: path.join(root, 'restored'),
    ATHANOR_BACKUP_TARGET: `file:${restoreTarget}`,
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const restoreMs = performance.now() - restoreStarted;

const result = {
  bench: 'pitr',
  at: new Date().toISOString(),
  seconds,
  repeats,
  rounds,
  commitsPerSecondOff: mean(off, 'commitsPerSecond'),
  commitsPerSecondOn: mean(on, 'commitsPerSecond'),
  throughputCost: 1 - mean(on, 'commitsPerSecond') / mean(off, 'commitsPerSecond'),
  cpuMsPerCommitOff: mean(off, 'cpuMsPerCommit'),
  cpuMsPerCommitOn: mean(on, 'cpuMsPerCommit'),
  lagP99Ms: Math.max(...on.map((r) => r.lagP99Ms)),
  lagMaxMs: Math.max(...on.map((r) => r.lagMaxMs)),
  restoreRows,
  restoreSeconds: restoreMs / 1000,
};
mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
const out = path.join(import.meta.dirname, 'results', `pitr-${result.at.replace(/[:.]/g, '-')}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
rmSync(root, { recursive: true, force: true });
console.log(`SQLite replication, ${seconds} s rounds, ${repeats} off/on pairs (one writer, small commits):`);
console.log(
  `  commits/s   off ${result.commitsPerSecondOff.toFixed(0)}   on ${result.commitsPerSecondOn.toFixed(0)}   cost ${(result.throughputCost * 100).toFixed(1)} % (goal ≤ 10 %)`,
);
console.log(
  `  CPU ms/commit  off ${result.cpuMsPerCommitOff.toFixed(3)}   on ${result.cpuMsPerCommitOn.toFixed(3)} (writer process, replicator included)`,
);
console.log(
  `  lag (commit → durable at the target)  p99 ${result.lagP99Ms} ms, max ${result.lagMaxMs} ms (goal ≤ 1000 ms)`,
);
console.log(`  restore --to-time of ${restoreRows} rows: ${result.restoreSeconds.toFixed(1)} s`);
console.log(`written ${out}`);
