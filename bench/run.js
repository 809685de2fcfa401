// Benchmarks: drains a queue through a real server and reports throughput and claim latency.
// `npm run bench` (builds first). Writes bench/results/<name>.json and prints a table.
// Options through the environment: BENCH_TASKS (default 20000), BENCH_CLAIMERS (default 32),
// BENCH_DATABASE_URL (default a temporary SQLite file), BENCH_PROCESSES=1 (each claimer its own
// process, as in production and the drain test; the default runs them in this process).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserClient } from '../dist/client/index.js';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { drainQueue } from './claimer.js';
import { buildApp } from '../dist/server/app.js';
import { addIdentity } from '../dist/service/identities.js';
import { migrate } from '../dist/store/migrator.js';
import { openStore } from '../dist/store/open-store.js';

const tasks = Number(process.env.BENCH_TASKS ?? 20_000);
const claimers = Number(process.env.BENCH_CLAIMERS ?? 32);
const separateProcesses = process.env.BENCH_PROCESSES === '1';
const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-'));
const databaseUrl = process.env.BENCH_DATABASE_URL ?? `sqlite:${path.join(dir, 'bench.db')}`;
const config = {
  ...resolveConfig({ databaseUrl, dataDir: dir }, {}),
  tokenRateLimit: 100_000,
  sweepIntervalMs: 0,
};

const store = await openStore(config, { create: true });
await migrate(store, { lockTimeoutMs: 60_000 });
await addIdentity(store, 'bench', {
  kind: 'user',
  identifier: 'bench',
  key: 'bench-user-key-000',
  scopes: ['*-*-*'],
});
await addIdentity(store, 'bench', {
  kind: 'compute',
  identifier: 'benchc',
  key: 'bench-compute-key',
  scopes: ['*-*-*'],
});
const app = await buildApp({ store, config, logger: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${app.server.address().port}`;

const user = new UserClient({ url, identifier: 'bench', key: 'bench-user-key-000' });
const perTransformation = 100;
const network = await user.submitNetwork({
  scope: 'bench-drain-run',
  name: 'bench',
  transformations: Array.from({ length: Math.ceil(tasks / perTransformation) }, (_, i) => ({
    name: `t${i}`,
    protocol: 'echo',
    inputs: { i },
  })),
});
const ids = [];
for (const tf of network.transformations)
  ids.push(...(await user.createTasks(tf, { count: perTransformation })).map((t) => t.id));
for (let i = 0; i < ids.length; i += 5000) await user.actionTasks(network.key, ids.slice(i, i + 5000));

const claimLatencies = [];
const started = performance.now();
const cpuAtStart = process.cpuUsage();
await Promise.all(
  Array.from({ length: claimers }, () =>
    separateProcesses ? claimInChild() : drainQueue(url, claimLatencies),
  ),
);
const seconds = (performance.now() - started) / 1000;
const serverCpu = process.cpuUsage(cpuAtStart);

/** One claimer as its own process (as compute services are), reporting its claim latencies. */
function claimInChild() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'claimer.js'), url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`claimer exited with ${code}`));
      claimLatencies.push(...JSON.parse(out));
      resolve();
    });
  });
}
claimLatencies.sort((a, b) => a - b);
const pct = (p) => claimLatencies[Math.min(claimLatencies.length - 1, Math.floor(p * claimLatencies.length))];
const result = {
  name: separateProcesses ? 'drain-processes' : 'drain',
  backend: store.backend.name,
  tasks: ids.length,
  claimers,
  seconds: Number(seconds.toFixed(2)),
  tasksPerSecond: Number((ids.length / seconds).toFixed(1)),
  serverCpuMsPerTask: Number(((serverCpu.user + serverCpu.system) / 1000 / ids.length).toFixed(2)),
  claimLatencyMs: {
    p50: Number(pct(0.5).toFixed(1)),
    p95: Number(pct(0.95).toFixed(1)),
    p99: Number(pct(0.99).toFixed(1)),
  },
  node: process.version,
  at: new Date().toISOString(),
};
await app.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
const out = path.join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, `${result.name}-${result.backend}.json`),
  `${JSON.stringify(result, null, 2)}\n`,
);
const { claimLatencyMs, ...row } = result;
console.table([
  {
    ...row,
    'claim p50 ms': claimLatencyMs.p50,
    'claim p95 ms': claimLatencyMs.p95,
    'claim p99 ms': claimLatencyMs.p99,
  },
]);
