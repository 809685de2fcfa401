// `npm run bench` (builds first): Athanor on SQLite and PostgreSQL side by side with graphile-worker
// and pg-boss on one throwaway PostgreSQL cluster with default durable settings, in one run,
// alternating the systems; every claimer or worker is its own process. Then backups: Athanor's
// `backup create`/`restore` against pg_dump -Fc/pg_restore and sqlite3 .backup + gzip/zstd.
// Prints every figure as a ratio against the peer measured in the same run and writes
// bench/results/bench-<time>.json.
// Environment: BENCH_QUICK=1 (small runs, under 3 minutes), BENCH_TASKS (tasks per drain; default
// 20000, quick 500), BENCH_CLAIMERS (comma separated claimer counts at batch 1; default 8,16,32,
// quick 16), BENCH_BATCH (large batch size; default 500), BENCH_REPEATS (A/B rounds; default 2,
// quick 1), BENCH_LATENCY_WAITING (comma separated queue depths of the claim-latency runs; default
// 10000,1000000, quick 10000,100000), BENCH_LATENCY_CLAIMERS (default 32), BENCH_LATENCY_CLAIMS
// (claims per claimer; default 100, quick 20), BENCH_CPU_PROFILE (a directory for server profiles),
// BENCH_ONLY=backups (one PostgreSQL and one SQLite drain at the large batch, then the backups),
// BENCH_BACKUP_REPEATS (backup rounds of each database, alternating Athanor and the native tools;
// default 1).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { growDrained } from './fill-drained.js';
import { startCluster } from './postgres-cluster.js';
import { startWorkers } from './workers.js';
import { startBenchServer } from './athanor-server.js';
import { cpuMsBetween, cpuSnapshot } from './proc-cpu.js';

// `npm run bench -- cli`, `-- blue-green`, `-- history`, `-- python`, `-- manager`, `-- pitr` and
// `-- events`: the scenarios in their own files.
const scenarios = {
  cli: './cli-timing.js',
  'blue-green': './blue-green.js',
  history: './history.js',
  manager: './manager.js',
  python: './python-client.js',
  pitr: './pitr.js',
  events: './events.js',
};
if (process.argv[2] in scenarios) {
  await import(scenarios[process.argv[2]]);
  process.exit();
}
const quick = process.env.BENCH_QUICK === '1';
const tasks = Number(process.env.BENCH_TASKS ?? (quick ? 500 : 20_000));
const claimerCounts = (process.env.BENCH_CLAIMERS ?? (quick ? '16' : '8,16,32')).split(',').map(Number);
const batch = Number(process.env.BENCH_BATCH ?? 500);
const repeats = Number(process.env.BENCH_REPEATS ?? (quick ? 1 : 2));
// Claim latency in a deep queue: waiting tasks per run, claimer processes, claims per claimer.
const latencyWaiting = (process.env.BENCH_LATENCY_WAITING ?? (quick ? '10000,100000' : '10000,1000000'))
  .split(',')
  .map(Number);
const latencyClaimers = Number(process.env.BENCH_LATENCY_CLAIMERS ?? 32);
const latencyClaims = Number(process.env.BENCH_LATENCY_CLAIMS ?? (quick ? 20 : 100));
const peerProcesses = 4;
const onlyBackups = process.env.BENCH_ONLY === 'backups';
const backupRepeats = Number(process.env.BENCH_BACKUP_REPEATS ?? 1);
const backupFill = Number(process.env.BENCH_BACKUP_FILL ?? 0);
const fillBlobs = process.env.BENCH_FILL_BLOBS !== '0';
const benchStarted = Date.now();
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-'));
const cluster = await startCluster();
const log = (line) => process.stderr.write(`${((Date.now() - benchStarted) / 1000).toFixed(0)}s ${line}\n`);
let databases = 0;
// Every statement the in-process server sends to PostgreSQL (the peers run in other processes).
let sqlStatements = 0;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function countedQuery(...args) {
  sqlStatements += 1;
  return query.apply(this, args);
};

async function createDatabase(prefix) {
  const name = `${prefix}_${++databases}`;
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  return { name, url: cluster.url(name) };
}

async function sql(url, text, values) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

// BENCH_CPU_PROFILE=<dir>: a CPU profile of the server (this process) during each Athanor drain,
// written as <dir>/<system>-<claimers>x<batch>.cpuprofile (open it in Chrome DevTools).
const profileDir = process.env.BENCH_CPU_PROFILE;
let profiler;
async function startProfile() {
  if (!profileDir) return;
  if (!profiler) {
    const { Session } = await import('node:inspector/promises');
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
  }
  await profiler.post('Profiler.start');
}
async function stopProfile(name) {
  if (!profileDir) return;
  const { profile } = await profiler.post('Profiler.stop');
  mkdirSync(profileDir, { recursive: true });
  writeFileSync(
    path.join(profileDir, `${name.replace(/[^\w.-]+/g, '-')}.cpuprofile`),
    JSON.stringify(profile),
  );
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
const round = (n, digits = 2) => Number(n.toFixed(digits));

/**
 * Drains `tasks` tasks through a real Athanor server with `claimers` compute-service processes;
 * with `exchange`, each claim also reports the previous claim's results in the same request.
 */
/** A fresh Athanor database and a real server over HTTP, with a user and a compute identity. */
async function startAthanor(backend) {
  const dataDir = mkdtempSync(path.join(root, `athanor-${backend}-`));
  const databaseUrl =
    backend === 'sqlite'
      ? `sqlite:${path.join(dataDir, 'athanor.db')}`
      : (await createDatabase('athanor')).url;
  const config = {
    ...resolveConfig({ databaseUrl, dataDir }, {}),
    tokenRateLimit: 1_000_000,
    sweepIntervalMs: 0,
  };
  const { store, app, url, user } = await startBenchServer(config);
  return { store, app, url, user, databaseUrl, dataDir };
}

async function athanorDrain(backend, claimers, count, exchange = false) {
  const { store, app, url, user, databaseUrl, dataDir } = await startAthanor(backend);
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

  const workers = await startWorkers(claimers, { kind: 'athanor', url, count, exchange });
  const dbBefore = backend === 'postgres' ? cpuSnapshot(cluster.pid()) : undefined;
  const serverBefore = process.cpuUsage();
  const statementsBefore = sqlStatements;
  await startProfile();
  const started = performance.now();
  workers.send('go');
  const results = await workers.results();
  const statements = sqlStatements - statementsBefore;
  const seconds = (performance.now() - started) / 1000;
  await stopProfile(`athanor-${backend}${exchange ? '-exchange' : ''}-${claimers}x${count}`);
  const server = process.cpuUsage(serverBefore);
  const databaseCpuMs = dbBefore ? cpuMsBetween(dbBefore, cpuSnapshot(cluster.pid())) : 0;
  await app.close();
  await store.close();
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const processed = results.reduce((n, r) => n + r.processed, 0);
  if (processed !== ids.length) throw new Error(`Athanor drained ${processed} of ${ids.length} tasks`);
  return {
    system: `athanor-${backend}${exchange ? ' exchange' : ''}`,
    claimers,
    batch: count,
    tasks: processed,
    seconds: round(seconds),
    tasksPerSecond: round(processed / seconds, 1),
    cpuMsPerTask: {
      server: round((server.user + server.system) / 1000 / processed),
      database: round(databaseCpuMs / processed),
      claimers: round(results.reduce((n, r) => n + r.cpuMs, 0) / processed),
    },
    claimLatencyMs: { p50: round(percentile(latencies, 0.5), 1), p99: round(percentile(latencies, 0.99), 1) },
    claims: latencies.length,
    sqlStatementsPerTask: backend === 'postgres' ? round(statements / processed) : undefined,
    emptyClaimsWhileWorkWaited: results.reduce((n, r) => n + r.emptyWhileWorkWaited, 0),
    databaseUrl,
    dataDir,
  };
}

/**
 * Claim latency in a deep queue on PostgreSQL: one task created and actioned through the API is
 * copied `waiting - 1` times with SQL (`generate_series`; the same rows createTasks and
 * actionTasks write, each with its own weighted random claim key), the tables are analyzed as
 * autovacuum would, then `claimers` processes make `claimsEach` claims of one task each, with a
 * result for each, and the latencies of all claims are pooled. The queue never runs dry, so every
 * empty claim counts.
 */
async function claimLatency(claimers, waiting, claimsEach) {
  const { store, app, url, user, databaseUrl } = await startAthanor('postgres');
  const network = await user.submitNetwork({
    scope: 'bench-latency-run',
    name: 'latency',
    transformations: [{ name: 't', protocol: 'echo', inputs: {} }],
  });
  const [template] = await user.createTasks(network.transformations[0], { count: 1 });
  await user.actionTasks(network.key, [template.id]);
  const filled = performance.now();
  // Ascending ids (task- and 32 hex digits, as newTaskId makes them) fill the primary key in order.
  const copyId = `'task-' || lpad(to_hex(g), 32, '0')`;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // As pg_restore does: the secondary indexes are built after the load, and the per-row
    // foreign-key triggers are skipped (the copies reference the template's transformation and
    // their own task rows, which exist).
    const { rows: indexes } = await client.query(
      `select indexname, indexdef from pg_indexes
        where schemaname = current_schema() and tablename in ('tasks', 'hub_tasks')
          and indexname not in (select conname from pg_constraint)`,
    );
    for (const { indexname } of indexes) await client.query(`drop index ${indexname}`);
    await client.query('set session_replication_role = replica');
    // Every column copied from the template's row but the id and the claim key.
    const copy = async (table, idColumn, replaced) => {
      const { rows } = await client.query(
        `select column_name from information_schema.columns
          where table_schema = current_schema() and table_name = $1 order by ordinal_position`,
        [table],
      );
      const columns = rows.map((r) => r.column_name);
      const values = columns.map((c) => replaced[c] ?? `r.${c}`);
      await client.query(
        `insert into ${table} (${columns.join(', ')}) select ${values.join(', ')}
           from ${table} r, generate_series(2, $2::int) g where r.${idColumn} = $1`,
        [template.id, waiting],
      );
    };
    await copy('tasks', 'id', { id: copyId });
    await copy('hub_tasks', 'task_id', { task_id: copyId, claim_key: '-ln(1 - random()) / r.weight' });
    await client.query('reset session_replication_role');
    for (const { indexdef } of indexes) await client.query(indexdef);
    await client.query('analyze tasks, hub_tasks');
  } finally {
    await client.end();
  }
  const fillSeconds = (performance.now() - filled) / 1000;
  const workers = await startWorkers(claimers, { kind: 'athanor', url, count: 1, claims: claimsEach });
  const started = performance.now();
  workers.send('go');
  const results = await workers.results();
  const seconds = (performance.now() - started) / 1000;
  await app.close();
  await store.close();
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    waiting,
    claimers,
    claims: latencies.length,
    fillSeconds: round(fillSeconds, 1),
    claimsPerSecond: round(latencies.length / seconds, 1),
    claimLatencyMs: {
      p50: round(percentile(latencies, 0.5), 1),
      p99: round(percentile(latencies, 0.99), 1),
    },
    emptyClaims: results.reduce((n, r) => n + r.emptyWhileWorkWaited, 0),
  };
}

/** Drains `tasks` jobs through graphile-worker or pg-boss worker processes on the same cluster. */
async function peerDrain(system, processes, concurrency, count) {
  const { url } = await createDatabase(system.replace('-', '_'));
  let remaining;
  if (system === 'graphile-worker') {
    const { runMigrations } = await import('graphile-worker');
    await runMigrations({
      connectionString: url,
      logger: new (await import('graphile-worker')).Logger(() => () => {}),
    });
    await sql(
      url,
      `select graphile_worker.add_jobs(array(select json_populate_record(null::graphile_worker.job_spec,
         json_build_object('identifier', 'bench', 'payload', json_build_object('i', g))) from generate_series(1, $1) g))`,
      [tasks],
    );
    remaining = async () => Number((await sql(url, 'select count(*) as n from graphile_worker.jobs'))[0].n);
  } else {
    const { default: PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    await boss.createQueue('bench');
    for (let i = 0; i < tasks; i += 1000)
      await boss.insert(
        'bench',
        Array.from({ length: Math.min(1000, tasks - i) }, (_, j) => ({ data: { i: i + j } })),
      );
    await boss.stop({ graceful: false, wait: true });
    remaining = async () =>
      Number(
        (
          await sql(url, `select count(*) as n from pgboss.job where name = 'bench' and state < 'completed'`)
        )[0].n,
      );
  }
  const workers = await startWorkers(processes, {
    kind: system,
    url,
    concurrency,
    count,
    localQueue: system === 'graphile-worker' && count > 1 ? count : undefined,
  });
  const dbBefore = cpuSnapshot(cluster.pid());
  const started = performance.now();
  workers.send('go');
  while ((await remaining()) > 0) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - started) / 1000;
  const databaseCpuMs = cpuMsBetween(dbBefore, cpuSnapshot(cluster.pid()));
  workers.send('stop');
  const results = await workers.results();
  return {
    system:
      count > 1
        ? `${system} ${system === 'pg-boss' ? 'batchSize' : 'localQueue'} ${count}`
        : `${system} unbatched`,
    claimers: processes * concurrency,
    batch: count,
    tasks,
    seconds: round(seconds),
    tasksPerSecond: round(tasks / seconds, 1),
    cpuMsPerTask: {
      server: 0,
      database: round(databaseCpuMs / tasks),
      claimers: round(results.reduce((n, r) => n + r.cpuMs, 0) / tasks),
    },
  };
}

function timed(file, args, env) {
  const started = performance.now();
  execFileSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  return (performance.now() - started) / 1000;
}

function sizeBytes(target) {
  const s = statSync(target);
  if (!s.isDirectory()) return s.size;
  return readdirSync(target).reduce((n, name) => n + sizeBytes(path.join(target, name)), 0);
}

/** A PostgreSQL client tool of the cluster's version, else the one on PATH. */
function postgresTool(name) {
  const own = path.join(cluster.binDir, name);
  return existsSync(own) ? own : name;
}

const cli = path.join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

/** Athanor's backup create and restore of a drained database, timed once. */
async function athanorBackup(run) {
  const target = mkdtempSync(path.join(root, 'backups-'));
  const env = {
    ATHANOR_DATABASE_URL: run.databaseUrl,
    ATHANOR_DATA_DIR: run.dataDir,
    ATHANOR_BACKUP_TARGET: `file:${target}`,
  };
  const create = timed(process.execPath, [cli, 'backup', 'create'], env);
  const bytes = sizeBytes(target);
  const fresh = mkdtempSync(path.join(root, 'restored-'));
  const restoreUrl =
    run.system === 'athanor-postgres' || run.system === 'athanor-postgres exchange'
      ? (await createDatabase('restored')).url
      : `sqlite:${path.join(fresh, 'athanor.db')}`;
  const restore = timed(
    process.execPath,
    [cli, 'backup', 'restore', 'latest', '--database-url', restoreUrl],
    { ...env, ATHANOR_DATA_DIR: fresh },
  );
  rmSync(target, { recursive: true, force: true });
  rmSync(fresh, { recursive: true, force: true });
  return { create, restore, bytes };
}

/** The native tools on the same database, timed once. */
async function nativeBackup(run) {
  if (run.system.startsWith('athanor-postgres')) {
    const dump = path.join(root, `dump-${databases}.pgdump`);
    const pgDump = timed(postgresTool('pg_dump'), ['-Fc', '-f', dump, '-d', run.databaseUrl]);
    const into = await createDatabase('pgrestored');
    const pgRestore = timed(postgresTool('pg_restore'), ['-d', into.url, dump]);
    const bytes = sizeBytes(dump);
    rmSync(dump, { force: true });
    return { create: pgDump, restore: pgRestore, bytes };
  }
  const file = run.databaseUrl.slice('sqlite:'.length);
  const copy = path.join(root, `copy-${databases++}.db`);
  const sqliteBackup = timed('sqlite3', [file, `.backup '${copy}'`]);
  const gzip = timed('gzip', ['-k', copy]);
  const zstd = timed('zstd', ['-q', '-k', copy]);
  const result = {
    create: sqliteBackup + gzip,
    bytes: sizeBytes(`${copy}.gz`),
    zstdCreate: sqliteBackup + zstd,
    zstdBytes: sizeBytes(`${copy}.zst`),
  };
  for (const f of [copy, `${copy}.gz`, `${copy}.zst`]) rmSync(f, { force: true });
  return result;
}

/**
 * Athanor's backup create and restore of a drained database against the native tools,
 * `backupRepeats` rounds that alternate which side goes first; means, with each round's figures.
 */
async function backups(run) {
  const ours = [];
  const theirs = [];
  for (let round = 0; round < backupRepeats; round++) {
    if (round % 2 === 0) {
      ours.push(await athanorBackup(run));
      theirs.push(await nativeBackup(run));
    } else {
      theirs.push(await nativeBackup(run));
      ours.push(await athanorBackup(run));
    }
  }
  const avg = (rows, pick) => rows.reduce((n, r) => n + pick(r), 0) / rows.length;
  const each = (rows, pick) => rows.map((r) => round(pick(r)));
  const athanor = {
    create: round(avg(ours, (r) => r.create)),
    restore: round(avg(ours, (r) => r.restore)),
    bytes: Math.round(avg(ours, (r) => r.bytes)),
    rounds: { create: each(ours, (r) => r.create), restore: each(ours, (r) => r.restore) },
  };
  log(
    `athanor backup ${run.system}: create ${athanor.rounds.create.join(', ')} s, ` +
      `restore ${athanor.rounds.restore.join(', ')} s`,
  );
  if (run.system.startsWith('athanor-postgres')) {
    const peer = {
      name: 'pg_dump -Fc / pg_restore',
      create: round(avg(theirs, (r) => r.create)),
      restore: round(avg(theirs, (r) => r.restore)),
      bytes: Math.round(avg(theirs, (r) => r.bytes)),
      rounds: { create: each(theirs, (r) => r.create), restore: each(theirs, (r) => r.restore) },
    };
    log(`pg_dump -Fc: ${peer.rounds.create.join(', ')} s, pg_restore ${peer.rounds.restore.join(', ')} s`);
    return { backend: 'postgres', tasks: run.tasks, athanor, peer };
  }
  const peer = {
    name: 'sqlite3 .backup + gzip',
    create: round(avg(theirs, (r) => r.create)),
    bytes: Math.round(avg(theirs, (r) => r.bytes)),
    rounds: { create: each(theirs, (r) => r.create) },
  };
  const zstd = {
    name: 'sqlite3 .backup + zstd',
    create: round(avg(theirs, (r) => r.zstdCreate)),
    bytes: Math.round(avg(theirs, (r) => r.zstdBytes)),
    rounds: { create: each(theirs, (r) => r.zstdCreate) },
  };
  log(
    `sqlite3 .backup + gzip: ${peer.rounds.create.join(', ')} s; + zstd ${zstd.rounds.create.join(', ')} s`,
  );
  return { backend: 'sqlite', tasks: run.tasks, athanor, peer, zstd };
}

const drains = [];
const latencies = [];
let lastPostgres;
let lastSqlite;
try {
  if (onlyBackups) {
    for (const backend of ['postgres', 'sqlite']) {
      const r = await athanorDrain(backend, 16, batch, true);
      log(`${r.system} ×${r.claimers} batch ${r.batch}: ${r.tasksPerSecond} tasks/s`);
      if (backend === 'postgres') lastPostgres = r;
      else lastSqlite = r;
      if (backupFill > 0) {
        const filled = performance.now();
        const objectsUrl = resolveConfig({ databaseUrl: r.databaseUrl, dataDir: r.dataDir }, {}).objectsUrl;
        r.tasks = await growDrained(r, backupFill, { distinctBlobs: fillBlobs, objectsUrl });
        log(
          `${r.system}: grown to ${r.tasks} tasks in ${((performance.now() - filled) / 1000).toFixed(1)} s`,
        );
      }
    }
  }
  for (let pass = 0; pass < (onlyBackups ? 0 : repeats); pass++) {
    // A/B alternation: odd rounds run the peer first, so neither side always gets the warmer cache.
    const order = (pair) => (pass % 2 === 0 ? pair : [...pair].reverse());
    for (const claimers of claimerCounts) {
      for (const step of order([
        () => athanorDrain('postgres', claimers, 1),
        () => athanorDrain('postgres', claimers, 1, true),
        () => peerDrain('graphile-worker', claimers, 1, 1),
      ])) {
        const r = await step();
        log(`${r.system} ×${r.claimers} batch ${r.batch}: ${r.tasksPerSecond} tasks/s`);
        drains.push(r);
        if (r.system === 'athanor-postgres') lastPostgres = r;
      }
    }
    for (const step of order([
      () => athanorDrain('postgres', 16, batch),
      () => athanorDrain('postgres', 16, batch, true),
      () => peerDrain('graphile-worker', peerProcesses, 4, batch),
      () => peerDrain('pg-boss', peerProcesses, 1, batch),
      () => athanorDrain('sqlite', 16, 1),
    ])) {
      const r = await step();
      log(`${r.system} ×${r.claimers} batch ${r.batch}: ${r.tasksPerSecond} tasks/s`);
      drains.push(r);
      if (r.system === 'athanor-postgres') lastPostgres = r;
      if (r.system === 'athanor-sqlite') lastSqlite = r;
    }
    for (const waiting of pass % 2 === 0 ? latencyWaiting : [...latencyWaiting].reverse()) {
      const r = await claimLatency(latencyClaimers, waiting, latencyClaims);
      log(
        `athanor-postgres claim latency ×${r.claimers}, ${waiting} waiting (filled in ${r.fillSeconds} s): ` +
          `p50 ${r.claimLatencyMs.p50} ms, p99 ${r.claimLatencyMs.p99} ms, ${r.emptyClaims} empty`,
      );
      latencies.push(r);
    }
  }
  const backupResults = [await backups(lastPostgres), await backups(lastSqlite)];
  for (const b of backupResults) log(`backup ${b.backend}: done`);
  report(drains, latencies, backupResults);
} finally {
  cluster.stop();
  rmSync(root, { recursive: true, force: true });
}

function report(drains, latencies, backupResults) {
  const mean = (rows, pick) => rows.reduce((n, r) => n + pick(r), 0) / rows.length;
  const find = (system, claimers, count) =>
    drains.filter((r) => r.system === system && r.claimers === claimers && r.batch === count);
  const comparisons = [];
  const compare = (measure, athanorRows, peerRows, pick, peerName, lowerIsBetter = false) => {
    if (!athanorRows.length || !peerRows.length) return;
    const a = mean(athanorRows, pick);
    const p = mean(peerRows, pick);
    comparisons.push({
      measure,
      athanor: round(a, 2),
      peer: `${peerName}: ${round(p, 2)}`,
      ratio: round(lowerIsBetter ? a / p : a / p, 3),
      reads: lowerIsBetter ? 'athanor ÷ peer (lower is better)' : 'athanor ÷ peer (higher is better)',
    });
  };
  const serverAndDb = (r) => r.cpuMsPerTask.server + r.cpuMsPerTask.database;
  for (const [system, how] of [
    ['athanor-postgres', 'claim + result'],
    ['athanor-postgres exchange', 'exchange'],
  ]) {
    for (const c of claimerCounts) {
      compare(
        `tasks/s, batch 1, ${c} claimers, PG, ${how}`,
        find(system, c, 1),
        find('graphile-worker unbatched', c, 1),
        (r) => r.tasksPerSecond,
        'graphile-worker unbatched',
      );
      compare(
        `CPU ms/task server+db, batch 1, ${c} claimers, ${how}`,
        find(system, c, 1),
        find('graphile-worker unbatched', c, 1),
        serverAndDb,
        'graphile-worker unbatched',
        true,
      );
    }
    const athanorLarge = find(system, 16, batch);
    compare(
      `tasks/s, 16 × ${batch} per claim, PG, ${how}`,
      athanorLarge,
      find(`graphile-worker localQueue ${batch}`, peerProcesses * 4, batch),
      (r) => r.tasksPerSecond,
      `graphile-worker localQueue ${batch}`,
    );
    compare(
      `tasks/s, 16 × ${batch} per claim, PG, ${how}`,
      athanorLarge,
      find(`pg-boss batchSize ${batch}`, peerProcesses, batch),
      (r) => r.tasksPerSecond,
      `pg-boss ${peerProcesses} × ${batch}`,
    );
    compare(
      `CPU ms/task server+db, 16 × ${batch} per claim, ${how}`,
      athanorLarge,
      find(`graphile-worker localQueue ${batch}`, peerProcesses * 4, batch),
      serverAndDb,
      `graphile-worker localQueue ${batch}`,
      true,
    );
  }
  // Claim latency in a deep queue: the deepest against the shallowest queue of the same run.
  const byWaiting = (waiting) => latencies.filter((r) => r.waiting === waiting);
  const shallow = byWaiting(Math.min(...latencyWaiting));
  const deep = byWaiting(Math.max(...latencyWaiting));
  if (latencyWaiting.length > 1 && shallow.length && deep.length) {
    const p99 = (rows) => mean(rows, (r) => r.claimLatencyMs.p99);
    comparisons.push({
      measure: `claim p99, ${latencyClaimers} claimers × 1, PG, ${Math.max(...latencyWaiting)} vs ${Math.min(...latencyWaiting)} waiting`,
      athanor: round(p99(deep), 1),
      peer: `same, ${Math.min(...latencyWaiting)} waiting: ${round(p99(shallow), 1)}`,
      ratio: round(p99(deep) / p99(shallow), 3),
      reads: 'ms, deep ÷ shallow queue (lower is better)',
    });
  }
  const sqlite16 = find('athanor-sqlite', 16, 1);
  compare(
    'tasks/s, batch 1, 16 claimers, SQLite vs PG',
    sqlite16,
    find('athanor-postgres', 16, 1),
    (r) => r.tasksPerSecond,
    'athanor-postgres',
  );
  for (const b of backupResults) {
    comparisons.push({
      measure: `backup create, ${b.backend}`,
      athanor: b.athanor.create,
      peer: `${b.peer.name}: ${b.peer.create}`,
      ratio: round(b.athanor.create / b.peer.create, 3),
      reads: 'seconds, athanor ÷ peer (lower is better)',
    });
    comparisons.push({
      measure: `backup size, ${b.backend}`,
      athanor: b.athanor.bytes,
      peer: `${b.peer.name}: ${b.peer.bytes}`,
      ratio: round(b.athanor.bytes / b.peer.bytes, 3),
      reads: 'bytes, athanor ÷ peer (lower is better)',
    });
    if (b.peer.restore)
      comparisons.push({
        measure: `backup restore, ${b.backend}`,
        athanor: b.athanor.restore,
        peer: `pg_restore: ${b.peer.restore}`,
        ratio: round(b.athanor.restore / b.peer.restore, 3),
        reads: 'seconds, athanor ÷ peer (lower is better)',
      });
    if (b.zstd) {
      comparisons.push({
        measure: `backup create, ${b.backend}`,
        athanor: b.athanor.create,
        peer: `${b.zstd.name}: ${b.zstd.create}`,
        ratio: round(b.athanor.create / b.zstd.create, 3),
        reads: 'seconds, athanor ÷ peer (lower is better)',
      });
    }
  }
  // Every goal of the issue with the figure of this run: a ratio against its target.
  const goals = [];
  const goal = (name, figure, target, lowerIsBetter) => {
    if (figure === undefined || Number.isNaN(figure)) return;
    goals.push({
      goal: name,
      figure: round(figure, 3),
      target: `${lowerIsBetter ? '≤' : '≥'} ${target}`,
      'figure ÷ target': target === 0 ? undefined : round(figure / target, 3),
      met: lowerIsBetter ? figure <= target : figure >= target,
    });
  };
  const ratioOf = (measure, peer) =>
    comparisons.find((c) => c.measure === measure && c.peer.startsWith(peer))?.ratio;
  for (const how of ['claim + result', 'exchange']) {
    goal(
      `tasks/s, batch 1, 16 claimers, PG, ${how} ÷ graphile-worker unbatched`,
      ratioOf(`tasks/s, batch 1, 16 claimers, PG, ${how}`, 'graphile-worker unbatched'),
      1,
    );
    goal(
      `tasks/s, 16 × ${batch}, ${how} ÷ graphile-worker localQueue`,
      ratioOf(`tasks/s, 16 × ${batch} per claim, PG, ${how}`, 'graphile-worker localQueue'),
      0.5,
    );
    goal(
      `tasks/s, 16 × ${batch}, ${how} ÷ pg-boss`,
      ratioOf(`tasks/s, 16 × ${batch} per claim, PG, ${how}`, 'pg-boss'),
      2,
    );
    goal(
      `CPU/task server+db, batch 1, 16 claimers, ${how} ÷ graphile-worker`,
      ratioOf(`CPU ms/task server+db, batch 1, 16 claimers, ${how}`, 'graphile-worker'),
      2,
      true,
    );
    goal(
      `CPU/task server+db, 16 × ${batch}, ${how} ÷ graphile-worker localQueue`,
      ratioOf(`CPU ms/task server+db, 16 × ${batch} per claim, ${how}`, 'graphile-worker'),
      2,
      true,
    );
  }
  if (deep.length) {
    const deepest = Math.max(...latencyWaiting);
    goal(
      `claim p99 ms, ${latencyClaimers} claimers, ${deepest} waiting`,
      mean(deep, (r) => r.claimLatencyMs.p99),
      20,
      true,
    );
    goal(
      `claim p99, ${deepest} ÷ ${Math.min(...latencyWaiting)} waiting`,
      comparisons.find((c) => c.measure.startsWith('claim p99'))?.ratio,
      1.5,
      true,
    );
  }
  goal(
    'empty claims while work waited, all Athanor runs',
    drains.reduce((n, r) => n + (r.emptyClaimsWhileWorkWaited ?? 0), 0) +
      latencies.reduce((n, r) => n + r.emptyClaims, 0),
    0,
    true,
  );
  const result = {
    at: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      memoryBytes: os.totalmem(),
      loadAverage: os.loadavg().map((n) => round(n, 1)),
      node: process.version,
      postgres: execFileSync(postgresTool('pg_dump'), ['--version'], {
        encoding: 'utf8',
      }).trim(),
    },
    settings: {
      quick,
      tasks,
      claimerCounts,
      batch,
      repeats,
      peerProcesses,
      latencyWaiting,
      latencyClaimers,
      latencyClaims,
      onlyBackups,
      backupRepeats,
    },
    seconds: round((Date.now() - benchStarted) / 1000, 0),
    comparisons,
    drains: drains.map(({ databaseUrl: _databaseUrl, dataDir: _dataDir, ...r }) => r),
    claimLatency: latencies,
    backups: backupResults,
    goals,
  };
  const out = path.join(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `bench-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.table(
    result.drains.map((r) => ({
      system: r.system,
      claimers: r.claimers,
      batch: r.batch,
      'tasks/s': r.tasksPerSecond,
      'server ms/task': r.cpuMsPerTask.server,
      'db ms/task': r.cpuMsPerTask.database,
      'claimer ms/task': r.cpuMsPerTask.claimers,
      'claim p50': r.claimLatencyMs?.p50,
      'claim p99': r.claimLatencyMs?.p99,
      'empty claims': r.emptyClaimsWhileWorkWaited,
      'SQL/task': r.sqlStatementsPerTask,
    })),
  );
  console.table(
    latencies.map((r) => ({
      waiting: r.waiting,
      claimers: r.claimers,
      claims: r.claims,
      'claims/s': r.claimsPerSecond,
      'claim p50': r.claimLatencyMs.p50,
      'claim p99': r.claimLatencyMs.p99,
      'empty claims': r.emptyClaims,
      'fill s': r.fillSeconds,
    })),
  );
  console.table(comparisons);
  console.table(goals);
  console.log(`${file} (${result.seconds} s)`);
}
