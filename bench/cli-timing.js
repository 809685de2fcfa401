// `npm run bench -- cli`: how long a person waits for the CLI. Times `athanor --version`,
// `athanor --help` and one API call (`athanor network list` against a running `athanor serve`,
// token request included) against bare `node -e 0` in the same run, the four interleaved so load
// on the machine hits them alike, and prints p50/p90 with each p50 as a ratio to bare Node's.
// Environment: BENCH_CLI_RUNS (runs of each, default 21).
/* global fetch */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { addIdentity } from '../dist/service/identities.js';
import { migrate } from '../dist/store/migrator.js';
import { openStore } from '../dist/store/open-store.js';

const runs = Number(process.env.BENCH_CLI_RUNS ?? 21);
const cli = path.join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-cli-'));

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

const dataDir = path.join(root, 'data');
const databaseUrl = `sqlite:${path.join(root, 'athanor.db')}`;
const store = await openStore(resolveConfig({ databaseUrl, dataDir }, {}), { create: true });
await migrate(store, { lockTimeoutMs: 60_000 });
await addIdentity(store, 'bench', {
  kind: 'user',
  identifier: 'bench',
  key: 'bench-user-key-000',
  scopes: ['bench-cli-*'],
});
await store.close();

const port = await freePort();
const serverEnv = {
  ...process.env,
  ATHANOR_DATABASE_URL: databaseUrl,
  ATHANOR_DATA_DIR: dataDir,
  ATHANOR_LOG_LEVEL: 'warn',
  ATHANOR_SHUTDOWN_DELAY_MS: '0',
};
const server = spawn(process.execPath, [cli, 'serve', '--port', String(port)], {
  env: serverEnv,
  stdio: ['ignore', 'ignore', 'pipe'],
});
let serverLog = '';
server.stderr.on('data', (chunk) => (serverLog += chunk));
const url = `http://127.0.0.1:${port}`;
try {
  const deadline = Date.now() + 60_000;
  while (
    !(await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (server.exitCode !== null || Date.now() > deadline)
      throw new Error(`athanor serve did not start: ${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const clientEnv = {
    ...process.env,
    ATHANOR_URL: url,
    ATHANOR_ID: 'bench',
    ATHANOR_KEY: 'bench-user-key-000',
    NO_COLOR: '1',
  };
  const commands = {
    'node -e 0': ['-e', '0'],
    'athanor --version': [cli, '--version'],
    'athanor --help': [cli, '--help'],
    'athanor network list': [cli, 'network', 'list', '--json'],
  };
  const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
  const runOnce = (name) => {
    const started = performance.now();
    const run = spawnSync(process.execPath, commands[name], { env: clientEnv, encoding: 'utf8' });
    const ms = performance.now() - started;
    if (run.status !== 0) throw new Error(`${name} exited ${run.status}: ${run.stderr}`);
    return ms;
  };
  // One warm-up of each fills the page cache; then the commands take turns.
  for (const name of Object.keys(commands)) runOnce(name);
  for (let i = 0; i < runs; i++) for (const name of Object.keys(commands)) times[name].push(runOnce(name));

  const p50 = (name) =>
    percentile(
      [...times[name]].sort((a, b) => a - b),
      0.5,
    );
  const goals = { 'athanor --version': 150, 'athanor network list': 300 };
  const rows = Object.keys(commands).map((name) => {
    const sorted = [...times[name]].sort((a, b) => a - b);
    return {
      command: name,
      'p50 ms': Math.round(percentile(sorted, 0.5)),
      'p90 ms': Math.round(percentile(sorted, 0.9)),
      'p50 ÷ node -e 0': Number((p50(name) / p50('node -e 0')).toFixed(2)),
      'goal ms': goals[name] ?? '',
    };
  });
  console.log(
    `${runs} runs each, Node ${process.version}, ${os.cpus().length} CPUs, load average ` +
      os
        .loadavg()
        .map((n) => n.toFixed(1))
        .join(' '),
  );
  console.table(rows);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
  rmSync(root, { recursive: true, force: true });
}
