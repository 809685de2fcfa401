// `npm run bench -- events`: the cost and speed of the event log, webhooks and strategies.
// Drains the same tasks through an in-process server (claimers as separate processes,
// bench/worker.js) three ways, rounds alternating the order: events off (an in-process store
// option only this bench sets), events on with no listener, events on with 5 webhooks and an SSE
// listener attached (in a separate process, bench/event-listeners.js). Reports the throughput
// ratios (goal ≥ 0.9×), the event-to-delivery latency p50/p99 of task.complete events under the
// drain, and the strategy reaction time: a failed result to the replacement task that
// repeat-until creates (goal p99 ≤ 2 s).
// Environment: BENCH_QUICK=1, BENCH_TASKS (default 3000, quick 600), BENCH_CLAIMERS (default 8),
// BENCH_REPEATS (default 2, quick 1), BENCH_BACKENDS (default sqlite,postgres),
// BENCH_REACTIONS (failed results timed per backend; default 40, quick 20).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ComputeClient } from '../dist/client/index.js';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { benchCompute, startBenchServer } from './athanor-server.js';
import { startCluster } from './postgres-cluster.js';
import { startWorkers } from './workers.js';

const quick = process.env.BENCH_QUICK === '1';
const tasks = Number(process.env.BENCH_TASKS ?? (quick ? 600 : 3000));
const claimers = Number(process.env.BENCH_CLAIMERS ?? 8);
const repeats = Number(process.env.BENCH_REPEATS ?? (quick ? 1 : 2));
const reactions = Number(process.env.BENCH_REACTIONS ?? (quick ? 20 : 40));
const backends = (process.env.BENCH_BACKENDS ?? 'sqlite,postgres').split(',');
const started = Date.now();
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-events-'));
const cluster = backends.includes('postgres') ? await startCluster() : undefined;
const log = (line) => process.stderr.write(`${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`);
let databases = 0;
const round = (n, digits = 2) => Number(n.toFixed(digits));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const percentile = (xs, p) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
};

async function databaseUrl(backend, dataDir) {
  if (backend === 'sqlite') return `sqlite:${path.join(dataDir, 'athanor.db')}`;
  const { default: pg } = await import('pg');
  const name = `events_${++databases}`;
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  return cluster.url(name);
}

async function serve(backend, storeOptions) {
  const dataDir = mkdtempSync(path.join(root, `${backend}-`));
  const config = {
    ...resolveConfig({ databaseUrl: await databaseUrl(backend, dataDir), dataDir }, {}),
    tokenRateLimit: 1_000_000,
    sweepIntervalMs: 0,
    eventsIntervalMs: 100,
    webhookAllowPrivate: true,
  };
  return { ...(await startBenchServer(config, storeOptions)), dataDir };
}

function startListeners(count, url, token) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(import.meta.dirname, 'event-listeners.js'), JSON.stringify({ count, url, token })],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.on('error', reject);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const ready = /^ready (.*)\n/.exec(out);
      if (ready && !child.ports) {
        child.ports = JSON.parse(ready[1]);
        out = out.slice(ready[0].length);
        resolve({
          ports: child.ports,
          stop: () =>
            new Promise((done) => {
              child.stdout.on('data', () => {
                const line = out.split('\n').find((l) => l.startsWith('{'));
                if (line) done(JSON.parse(line));
              });
              child.stdin.write('stop\n');
            }),
        });
      }
    });
  });
}

/** Drains `tasks` echo tasks; `variant` is off, on, or listeners (5 webhooks + SSE). */
async function drain(backend, variant) {
  const { store, app, url, user, dataDir } = await serve(backend, { skipEventWrites: variant === 'off' });
  let listeners;
  if (variant === 'listeners') {
    const { access_token } = await (
      await globalThis.fetch(`${url}/v1/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'bench', password: 'bench-user-key-000' }),
      })
    ).json();
    listeners = await startListeners(5, url, access_token);
    for (const port of listeners.ports)
      await user.addWebhook({
        url: `http://127.0.0.1:${port}/hook`,
        scope: '*-*-*',
        events: ['task.complete'],
      });
  }
  const perTransformation = 100;
  const network = await user.submitNetwork({
    scope: 'bench-events-run',
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
  const workers = await startWorkers(claimers, { kind: 'athanor', url, count: 1, exchange: false });
  const t0 = performance.now();
  workers.send('go');
  const results = await workers.results();
  const seconds = (performance.now() - t0) / 1000;
  const processed = results.reduce((n, r) => n + r.processed, 0);
  let delays = [];
  if (listeners) {
    // Wait until every webhook caught up, then read the arrival delays.
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const hooks = await user.listWebhooks();
      const behind = await store.db
        .selectFrom('events')
        .select((eb) => eb.fn.max('position').as('p'))
        .executeTakeFirst();
      if (hooks.every((h) => h.deliveredUpTo >= Number(behind?.p ?? 0))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    ({ delays } = await listeners.stop());
  }
  const events = await store.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('type', '=', 'task.complete')
    .executeTakeFirst();
  await app.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (processed !== ids.length) throw new Error(`drained ${processed} of ${ids.length} tasks`);
  if (Number(events.n) !== (variant === 'off' ? 0 : processed))
    throw new Error(`${variant}: ${events.n} task.complete events for ${processed} tasks`);
  return { tasksPerSecond: processed / seconds, delays };
}

/** Failed results, each timed to the replacement task repeat-until creates for it. */
async function reaction(backend) {
  const { store, app, url, user, dataDir } = await serve(backend, {});
  const network = await user.submitNetwork({
    scope: 'bench-events-react',
    name: 'react',
    transformations: Array.from({ length: reactions }, (_, i) => ({
      name: `r${i}`,
      protocol: 'echo',
      inputs: { i },
    })),
  });
  await user.setStrategy(network.key, 'repeat-until', { n: 1 });
  const compute = new ComputeClient({ url, ...benchCompute });
  const { id } = await compute.register('reaction');
  const times = [];
  while (times.length < reactions) {
    const [claim] = await compute.claim(id, { count: 1 });
    if (!claim) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const failedAt = Date.now();
    await compute.submitResult(claim.task, claim.leaseToken, 'failed', Buffer.from('failed on purpose'));
    for (;;) {
      const replacement = await store.db
        .selectFrom('tasks')
        .select('created_at')
        .where('transformation_key', '=', claim.transformation.key)
        .where('status', '=', 'waiting')
        .executeTakeFirst();
      if (replacement) {
        times.push(Date.parse(replacement.created_at) - failedAt);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    // Leave the replacement done so it is not claimed again.
    const [next] = await compute.claim(id, { count: 1 });
    if (next) await compute.submitResult(next.task, next.leaseToken, 'ok', Buffer.from('{}'));
  }
  await app.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  return times;
}

const rows = [];
try {
  for (const backend of backends) {
    const figures = { off: [], on: [], listeners: [] };
    const order = ['off', 'on', 'listeners'];
    for (let r = 0; r < repeats; r++) {
      for (const variant of r % 2 === 0 ? order : [...order].reverse()) {
        const f = await drain(backend, variant);
        figures[variant].push(f);
        log(`${backend} events ${variant}: ${f.tasksPerSecond.toFixed(1)} tasks/s`);
      }
    }
    const rate = (v) => mean(figures[v].map((f) => f.tasksPerSecond));
    const delays = figures.listeners.flatMap((f) => f.delays);
    const reactionMs = await reaction(backend);
    log(
      `${backend} strategy reaction p50 ${percentile(reactionMs, 50)} ms, p99 ${percentile(reactionMs, 99)} ms`,
    );
    rows.push({
      backend,
      claimers,
      tasks,
      rounds: repeats,
      tasksPerSecond: {
        off: round(rate('off'), 1),
        on: round(rate('on'), 1),
        listeners: round(rate('listeners'), 1),
      },
      onVsOff: round(rate('on') / rate('off'), 3),
      listenersVsOff: round(rate('listeners') / rate('off'), 3),
      deliveryLatencyMs: {
        p50: percentile(delays, 50),
        p99: percentile(delays, 99),
        deliveries: delays.length,
      },
      strategyReactionMs: {
        p50: percentile(reactionMs, 50),
        p99: percentile(reactionMs, 99),
        samples: reactionMs.length,
      },
      goals: {
        throughputWithListeners: rate('listeners') / rate('off') >= 0.9,
        reactionP99: percentile(reactionMs, 99) <= 2000,
      },
    });
  }
} finally {
  cluster?.stop();
  rmSync(root, { recursive: true, force: true });
}

const table = [
  '| backend | events off tasks/s | on | on + 5 webhooks + SSE | on/off | listeners/off (goal ≥ 0.9) | delivery p50 / p99 ms | strategy reaction p50 / p99 ms (goal p99 ≤ 2000) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.backend} | ${r.tasksPerSecond.off} | ${r.tasksPerSecond.on} | ${r.tasksPerSecond.listeners} | ${r.onVsOff.toFixed(2)}× | ` +
      `${r.listenersVsOff.toFixed(2)}× | ${r.deliveryLatencyMs.p50} / ${r.deliveryLatencyMs.p99} | ${r.strategyReactionMs.p50} / ${r.strategyReactionMs.p99} |`,
  ),
].join('\n');
process.stdout.write(
  `\nevents, ${claimers} claimers × 1 per claim, ${tasks} tasks per drain, ${repeats} round(s):\n${table}\n`,
);
const out = path.join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
const file = path.join(out, `events-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version };
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2)}\n`);
process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
