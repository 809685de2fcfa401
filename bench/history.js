// `npm run bench -- history`: claim and result throughput with attempt history on, against the
// same run's figures with the history writes skipped (an in-process store option only this bench
// sets), on SQLite and PostgreSQL. Rounds alternate on/off (then off/on) with the same process
// layout: an in-process server and claimers as separate processes (bench/worker.js), on one
// throwaway PostgreSQL cluster with default durable settings. Goal: history on ≤ 10 % slower.
// Environment: BENCH_QUICK=1 (small, about a minute), BENCH_TASKS (tasks per drain; default 4000,
// quick 600), BENCH_CLAIMERS (claimer processes; default 8), BENCH_REPEATS (on/off pairs per
// backend and mode; default 3, quick 2), BENCH_BACKENDS (default sqlite,postgres).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { startCluster } from './postgres-cluster.js';
import { cpuMsBetween, cpuSnapshot } from './proc-cpu.js';
import { startWorkers } from './workers.js';
import { startBenchServer } from './athanor-server.js';

const quick = process.env.BENCH_QUICK === '1';
const tasks = Number(process.env.BENCH_TASKS ?? (quick ? 600 : 4000));
const claimers = Number(process.env.BENCH_CLAIMERS ?? 8);
const repeats = Number(process.env.BENCH_REPEATS ?? (quick ? 2 : 3));
const backends = (process.env.BENCH_BACKENDS ?? 'sqlite,postgres').split(',');
/** Batch 1 (a claim and a result request per task) and 100 per claim with results in the next claim. */
const modes = [
  { name: 'batch 1', count: 1, exchange: false },
  { name: 'exchange 100', count: 100, exchange: true },
];
const started = Date.now();
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-history-'));
const cluster = backends.includes('postgres') ? await startCluster() : undefined;
const log = (line) => process.stderr.write(`${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`);
let databases = 0;
const round = (n, digits = 2) => Number(n.toFixed(digits));

async function databaseUrl(backend, dataDir) {
  if (backend === 'sqlite') return `sqlite:${path.join(dataDir, 'athanor.db')}`;
  const { default: pg } = await import('pg');
  const name = `history_${++databases}`;
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  return cluster.url(name);
}

/** Drains `tasks` echo tasks through a real server, with the attempt history written or not. */
async function drain(backend, mode, history) {
  const dataDir = mkdtempSync(path.join(root, `${backend}-`));
  const config = {
    ...resolveConfig({ databaseUrl: await databaseUrl(backend, dataDir), dataDir }, {}),
    tokenRateLimit: 1_000_000,
    sweepIntervalMs: 0,
  };
  const { store, app, url, user } = await startBenchServer(config, { skipHistoryWrites: !history });
  const perTransformation = 100;
  const network = await user.submitNetwork({
    scope: 'bench-history-run',
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

  const workers = await startWorkers(claimers, {
    kind: 'athanor',
    url,
    count: mode.count,
    exchange: mode.exchange,
  });
  const dbBefore = backend === 'postgres' ? cpuSnapshot(cluster.pid()) : undefined;
  const serverBefore = process.cpuUsage();
  const t0 = performance.now();
  workers.send('go');
  const results = await workers.results();
  const seconds = (performance.now() - t0) / 1000;
  const server = process.cpuUsage(serverBefore);
  const databaseCpuMs = dbBefore ? cpuMsBetween(dbBefore, cpuSnapshot(cluster.pid())) : 0;
  const processed = results.reduce((n, r) => n + r.processed, 0);
  const attempts = await store.db
    .selectFrom('task_attempts')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('outcome', '=', 'ok')
    .executeTakeFirstOrThrow();
  await app.close();
  await store.close();
  if (processed !== ids.length) throw new Error(`drained ${processed} of ${ids.length} tasks`);
  // The switch must do what it says, or the comparison means nothing.
  if (Number(attempts.n) !== (history ? processed : 0))
    throw new Error(
      `history ${history ? 'on' : 'off'}: ${attempts.n} closed attempts for ${processed} tasks`,
    );
  rmSync(dataDir, { recursive: true, force: true });
  return {
    tasksPerSecond: processed / seconds,
    serverCpuMsPerTask: (server.user + server.system) / 1000 / processed,
    databaseCpuMsPerTask: databaseCpuMs / processed,
  };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rows = [];
try {
  for (const backend of backends) {
    for (const mode of modes) {
      const on = [];
      const off = [];
      for (let r = 0; r < repeats; r++) {
        // Alternate which goes first, so a machine that speeds up or slows down favours neither.
        for (const history of r % 2 === 0 ? [true, false] : [false, true]) {
          const figures = await drain(backend, mode, history);
          (history ? on : off).push(figures);
          log(
            `${backend} ${mode.name}, history ${history ? 'on ' : 'off'}: ${figures.tasksPerSecond.toFixed(0)} tasks/s`,
          );
        }
      }
      const onRate = mean(on.map((f) => f.tasksPerSecond));
      const offRate = mean(off.map((f) => f.tasksPerSecond));
      rows.push({
        backend,
        mode: mode.name,
        claimers,
        tasks,
        rounds: repeats,
        historyOn: {
          tasksPerSecond: round(onRate, 1),
          perRound: on.map((f) => round(f.tasksPerSecond, 1)),
          serverCpuMsPerTask: round(mean(on.map((f) => f.serverCpuMsPerTask))),
          databaseCpuMsPerTask: round(mean(on.map((f) => f.databaseCpuMsPerTask))),
        },
        historyOff: {
          tasksPerSecond: round(offRate, 1),
          perRound: off.map((f) => round(f.tasksPerSecond, 1)),
          serverCpuMsPerTask: round(mean(off.map((f) => f.serverCpuMsPerTask))),
          databaseCpuMsPerTask: round(mean(off.map((f) => f.databaseCpuMsPerTask))),
        },
        ratio: round(onRate / offRate, 3),
        slowerPercent: round((1 - onRate / offRate) * 100, 1),
        goalMet: onRate / offRate >= 0.9,
      });
    }
  }
} finally {
  cluster?.stop();
  rmSync(root, { recursive: true, force: true });
}

const table = [
  '| backend | mode | history on tasks/s | history off tasks/s | on/off | slower | goal ≤ 10 % |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.backend} | ${r.mode} | ${r.historyOn.tasksPerSecond} | ${r.historyOff.tasksPerSecond} | ` +
      `${r.ratio.toFixed(2)}× | ${r.slowerPercent} % | ${r.goalMet ? 'met' : 'not met'} |`,
  ),
].join('\n');
process.stdout.write(
  `\nattempt history on vs off, ${claimers} claimers, ${tasks} tasks per drain, ${repeats} round(s) each:\n${table}\n`,
);
const out = path.join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
const file = path.join(out, `history-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version };
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2)}\n`);
process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
