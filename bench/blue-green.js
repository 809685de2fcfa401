// `npm run bench -- blue-green`: the zero-downtime release scenario of
// test/ops/blue-green-switch.test.ts at a larger size. Two colours of `athanor serve` behind a
// real nginx on loopback; users submit and read work and compute services claim tasks and upload
// results (every fourth one 2 MiB, trickled out over a second) through nginx, while `athanor
// deploy switch` moves traffic blue → green → blue …, each time restarting the retired colour as
// the next release, then one `deploy rollback`. Prints, per backend: requests, failed requests,
// tasks created, tasks not completed or claimed other than once, results lost, and the p99
// latency during switches against a stretch of the same load without them, as a ratio.
// Environment: BENCH_BACKENDS (default sqlite,postgres), BENCH_SWITCHES (default 10),
// BENCH_USERS and BENCH_COMPUTE (load loops, default 6 each), BENCH_BASELINE_MS (the stretch
// without switches, default 15000).
/* global fetch, clearTimeout */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { ComputeClient, UserClient } from '../dist/client/index.js';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { otherColour, renderUpstream } from '../dist/ops/deploy/index.js';
import { addIdentity } from '../dist/service/identities.js';
import { migrate } from '../dist/store/migrator.js';
import { openStore } from '../dist/store/open-store.js';
import { startCluster } from './postgres-cluster.js';

const backends = (process.env.BENCH_BACKENDS ?? 'sqlite,postgres').split(',');
const switches = Number(process.env.BENCH_SWITCHES ?? 10);
const userLoops = Number(process.env.BENCH_USERS ?? 6);
const computeLoops = Number(process.env.BENCH_COMPUTE ?? 6);
const baselineMs = Number(process.env.BENCH_BASELINE_MS ?? 15_000);
const largeResultBytes = 2 * 1024 * 1024;
const maxBacklog = 8 * computeLoops;
const cli = path.join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const benchStarted = Date.now();
const log = (line) => process.stderr.write(`${((Date.now() - benchStarted) / 1000).toFixed(0)}s ${line}\n`);

const nginx = ['nginx', '/usr/sbin/nginx'].find(
  (c) => spawnSync(c, ['-v'], { stdio: 'ignore' }).status === 0,
);
if (!nginx) {
  console.error('the blue/green bench needs nginx (apt-get install nginx)');
  process.exit(1);
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
};

async function until(probe, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `athanor serve` on a port, as a service manager runs it; resolves once /readyz says 200. */
async function startServe(port, env) {
  const child = spawn(process.execPath, [cli, 'serve', '--port', String(port)], {
    env: { ...process.env, ATHANOR_LOG_LEVEL: 'warn', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`serve exited before it was ready: ${output}`);
      return (await fetch(`${url}/readyz`)).status === 200;
    },
    60_000,
    `${url}/readyz`,
  );
  return { child, exited, log: () => output };
}

/** nginx on loopback with everything under `prefix`, in front of the upstream file's colour. */
async function startNginx(prefix, port) {
  for (const sub of ['logs', 'temp']) mkdirSync(path.join(prefix, sub), { recursive: true });
  const upstreamFile = path.join(prefix, 'athanor-upstream.conf');
  const config = path.join(prefix, 'nginx.conf');
  const user = process.getuid?.() === 0 ? `user ${os.userInfo().username};` : '';
  writeFileSync(
    config,
    `${user}
worker_processes 2;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/temp/body;
  proxy_temp_path ${prefix}/temp/proxy;
  fastcgi_temp_path ${prefix}/temp/fastcgi;
  uwsgi_temp_path ${prefix}/temp/uwsgi;
  scgi_temp_path ${prefix}/temp/scgi;
  include ${upstreamFile};
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://athanor;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 120s;
    }
  }
}
`,
  );
  const args = ['-p', prefix, '-c', config];
  const child = spawn(nginx, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx did not start: ${output}`);
      return (await fetch(`${url}/healthz`)).status === 200;
    },
    15_000,
    'nginx',
  );
  const quoted = args.map((a) => `'${a}'`).join(' ');
  return {
    url,
    upstreamFile,
    testCommand: `${nginx} -q -t ${quoted}`,
    reloadCommand: `${nginx} ${quoted} -s reload`,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGQUIT');
      const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(forced);
    },
  };
}

function runCli(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A result body; every fourth one is 2 MiB, trickled out over about a second. */
function resultBody(task, n) {
  if (n % 4 !== 0) {
    const small = Buffer.from(JSON.stringify({ task, n }));
    return { body: small, sha256: createHash('sha256').update(small).digest('hex') };
  }
  const chunk = Buffer.alloc(256 * 1024, task);
  const count = largeResultBytes / chunk.length;
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) hash.update(chunk);
  let sent = 0;
  const body = new Readable({
    read() {
      if (sent === count) return;
      setTimeout(() => {
        sent++;
        this.push(chunk);
        if (sent === count) this.push(null);
      }, 1000 / count);
    },
  });
  return { body, sha256: hash.digest('hex') };
}

let cluster;
async function databaseUrl(backend, dir) {
  if (backend === 'sqlite') return `sqlite:${path.join(dir, 'athanor.db')}`;
  cluster ??= await startCluster();
  const name = `bluegreen_${Date.now()}`;
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  return cluster.url(name);
}

async function scenario(backend, root) {
  const dir = mkdtempSync(path.join(root, `${backend}-`));
  const url = await databaseUrl(backend, dir);
  const store = await openStore(resolveConfig({ databaseUrl: url, dataDir: path.join(dir, 'data') }, {}), {
    create: true,
  });
  const cleanups = [() => store.close()];
  try {
    await migrate(store, { lockTimeoutMs: 60_000 });
    const userKey = 'bench-user-key-0123456789';
    const computeKey = 'bench-compute-key-0123456789';
    await addIdentity(store, 'bench', {
      kind: 'user',
      identifier: 'alice',
      key: userKey,
      scopes: ['org-camp-*'],
    });
    await addIdentity(store, 'bench', {
      kind: 'compute',
      identifier: 'hpc',
      key: computeKey,
      scopes: ['org-camp-*'],
    });
    const ports = { blue: await freePort(), green: await freePort() };
    const serveEnv = {
      ATHANOR_DATABASE_URL: url,
      ATHANOR_DATA_DIR: path.join(dir, 'data'),
      ATHANOR_OBJECTS_URL: `file:${path.join(dir, 'objects')}`,
      ATHANOR_SHUTDOWN_DELAY_MS: '0',
    };
    const colours = {};
    const start = async (colour) => (colours[colour] = await startServe(ports[colour], serveEnv));
    const stop = async (colour) => {
      const server = colours[colour];
      server.child.kill('SIGTERM');
      const code = await server.exited;
      if (code !== 0) throw new Error(`${colour} exited ${code}: ${server.log()}`);
    };
    await Promise.all([start('blue'), start('green')]);
    cleanups.push(() => Object.values(colours).forEach((s) => s.child.kill('SIGKILL')));

    const prefix = path.join(dir, 'nginx');
    mkdirSync(prefix, { recursive: true });
    writeFileSync(
      path.join(prefix, 'athanor-upstream.conf'),
      renderUpstream('blue', `http://127.0.0.1:${ports.blue}`),
    );
    const proxy = await startNginx(prefix, await freePort());
    cleanups.push(() => proxy.stop());
    const deployEnv = {
      ATHANOR_DATABASE_URL: url,
      ATHANOR_DEPLOY_BLUE_URL: `http://127.0.0.1:${ports.blue}`,
      ATHANOR_DEPLOY_GREEN_URL: `http://127.0.0.1:${ports.green}`,
      ATHANOR_DEPLOY_UPSTREAM_FILE: proxy.upstreamFile,
      ATHANOR_DEPLOY_TEST_COMMAND: proxy.testCommand,
      ATHANOR_DEPLOY_RELOAD_COMMAND: proxy.reloadCommand,
      ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS: '120000',
      ATHANOR_DEPLOY_PROXY_PID_FILE: path.join(prefix, 'nginx.pid'),
    };
    const deploy = async (args) => {
      const result = await runCli(['deploy', ...args], deployEnv);
      if (result.code !== 0)
        throw new Error(`deploy ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
      return result;
    };

    const user = new UserClient({ url: proxy.url, identifier: 'alice', key: userKey });
    const failures = [];
    const latencies = [];
    const timed = async (what, call) => {
      const started = performance.now();
      try {
        const value = await call();
        latencies.push({ at: Date.now(), ms: performance.now() - started });
        return value;
      } catch (error) {
        failures.push(`${what}: ${error.message}`);
        return undefined;
      }
    };
    const created = new Set();
    const claimsOf = new Map();
    const uploaded = new Map();
    let running = true;
    let usersDone = false;
    let submitted = 0;

    const userLoop = async (loop) => {
      while (running) {
        if (created.size - uploaded.size > maxBacklog) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const n = submitted++;
        const network = await timed('submit network', () =>
          user.submitNetwork({
            scope: 'org-camp-p',
            name: `load-${loop}-${n}`,
            transformations: [{ name: `t${n}`, protocol: 'echo', inputs: { loop, n } }],
          }),
        );
        if (!network) continue;
        const tasks = await timed('create tasks', () =>
          user.createTasks(network.transformations[0], { count: 2 }),
        );
        if (!tasks) continue;
        const actioned = await timed('action tasks', () =>
          user.actionTasks(
            network.key,
            tasks.map((t) => t.id),
          ),
        );
        if (!actioned) continue;
        for (const task of tasks) created.add(task.id);
        await timed('read status', () => user.networkStatus(network.key));
        await timed('list networks', () => user.listNetworks({ scope: 'org-camp-p', limit: 20 }));
      }
    };
    const computeLoop = async (loop) => {
      const compute = new ComputeClient({ url: proxy.url, identifier: 'hpc', key: computeKey });
      const service = await timed('register', () => compute.register(`worker-${loop}`));
      if (!service) return;
      let n = loop;
      for (;;) {
        const loadEnded = usersDone;
        const claims = await timed('claim', () => compute.claim(service.id, { count: 2, waitMs: 1000 }));
        for (const claim of claims ?? []) {
          claimsOf.set(claim.task, (claimsOf.get(claim.task) ?? 0) + 1);
          const { body, sha256 } = resultBody(claim.task, n++);
          const stored = await timed('upload result', () =>
            compute.submitResult(claim.task, claim.leaseToken, 'ok', body),
          );
          if (stored?.sha256 === sha256) uploaded.set(claim.task, sha256);
        }
        if (loadEnded && (claims === undefined || claims.length === 0)) break;
      }
      await timed('deregister', () => compute.deregister(service.id));
    };
    const load = [
      ...Array.from({ length: userLoops }, (_, i) => userLoop(i)),
      ...Array.from({ length: computeLoops }, (_, i) => computeLoop(i)),
    ];

    const baselineStarted = Date.now();
    await new Promise((r) => setTimeout(r, baselineMs));
    const baselineEnded = Date.now();
    log(`[${backend}] ${latencies.length} requests in the ${baselineMs} ms without switches`);

    let live = 'blue';
    const windows = [];
    for (let i = 0; i < switches; i++) {
      const target = otherColour(live);
      const began = Date.now();
      await deploy(['switch', target]);
      if (!readFileSync(proxy.upstreamFile, 'utf8').includes(`# athanor-live: ${target}`))
        throw new Error(`the upstream file does not name ${target} after the switch`);
      await stop(live);
      await start(live);
      windows.push([began, Date.now()]);
      log(`[${backend}] switch ${i + 1}/${switches} to ${target}: ${Date.now() - began} ms`);
      live = target;
    }
    const began = Date.now();
    await deploy(['rollback']);
    windows.push([began, Date.now()]);
    log(`[${backend}] rollback: ${Date.now() - began} ms`);

    running = false;
    await Promise.all(load.slice(0, userLoops));
    usersDone = true;
    await Promise.all(load);

    const ids = [...created];
    const rows = [];
    const results = [];
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      rows.push(
        ...(await store.db.selectFrom('tasks').select(['id', 'status']).where('id', 'in', slice).execute()),
      );
      results.push(
        ...(await store.db
          .selectFrom('results')
          .select(['task_id', 'blob_sha256'])
          .where('task_id', 'in', slice)
          .execute()),
      );
    }
    const storedSha = new Map(results.map((r) => [r.task_id, r.blob_sha256]));
    const inWindow = (at) => windows.some(([a, b]) => at >= a && at <= b);
    const during = latencies.filter((l) => inWindow(l.at)).map((l) => l.ms);
    const without = latencies
      .filter((l) => l.at >= baselineStarted && l.at <= baselineEnded)
      .map((l) => l.ms);
    const switchMs = windows.map(([a, b]) => b - a);
    return {
      backend,
      requests: latencies.length + failures.length,
      failed: failures.length,
      tasks: created.size,
      'not complete': rows.filter((r) => r.status !== 'complete').length + (ids.length - rows.length),
      'claimed ≠ once': ids.filter((t) => claimsOf.get(t) !== 1).length,
      results: uploaded.size,
      'results lost': ids.filter((t) => !uploaded.has(t) || storedSha.get(t) !== uploaded.get(t)).length,
      'switches + rollbacks': windows.length,
      'switch s (mean)': Number((switchMs.reduce((a, b) => a + b, 0) / switchMs.length / 1000).toFixed(1)),
      'p99 ms during': Math.round(percentile(during, 0.99)),
      'p99 ms without': Math.round(percentile(without, 0.99)),
      'p99 ratio': Number((percentile(during, 0.99) / percentile(without, 0.99)).toFixed(2)),
      firstFailures: failures.slice(0, 5),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-bluegreen-'));
const outcomes = [];
try {
  for (const backend of backends) outcomes.push(await scenario(backend, root));
} finally {
  cluster?.stop();
  rmSync(root, { recursive: true, force: true });
}
console.log(
  `${switches} switches and a rollback, ${userLoops} user and ${computeLoops} compute loops through nginx; ` +
    `Node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((n) => n.toFixed(1))
      .join(' ')}`,
);
console.table(outcomes.map(({ firstFailures: _f, ...row }) => row));
for (const o of outcomes) for (const f of o.firstFailures) console.log(`[${o.backend}] failed: ${f}`);
if (outcomes.some((o) => o.failed || o['not complete'] || o['claimed ≠ once'] || o['results lost']))
  process.exitCode = 1;
