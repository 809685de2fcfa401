// `npm run bench -- manager`: the compute manager. For the local driver and a real single-node
// Slurm (when slurm-wlm and munge are installed and this runs as root): the time from 100 tasks
// arriving to the first claim by a service the manager started, against a compute service that
// was already running (the peer, same run, same server); the time from the queue draining to
// the last service gone (goal: within one idle timeout); and the manager's CPU while idle, from
// /proc (goal: under 1 % of a core). Also the demand statement's time at 1,000 and at BENCH_WAITING
// (default 1,000,000, quick 100,000) waiting tasks on SQLite. Writes bench/results/manager-<time>.json.
// Environment: BENCH_QUICK=1 (about two minutes), BENCH_IDLE_SECONDS (idle CPU window; default 60,
// quick 20), BENCH_WAITING.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { ComputeClient } from '../dist/client/index.js';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { parseScope } from '../dist/domain/scope.js';
import { demandQuery } from '../dist/store/queries/managers.js';
import { benchCompute, startBenchServer } from './athanor-server.js';
import { cpuMsBetween, cpuSnapshot } from './proc-cpu.js';
import { slurmMissing, startSlurmCluster } from './slurm-cluster.js';

const quick = process.env.BENCH_QUICK === '1';
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? (quick ? 20 : 60));
const waitingLarge = Number(process.env.BENCH_WAITING ?? (quick ? 100_000 : 1_000_000));
const idleTimeoutS = 5;
const cli = path.resolve(import.meta.dirname, '../dist/cli/main.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-manager-'));
const started = Date.now();
const log = (line) => process.stderr.write(`${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (n, digits = 2) => Number(n.toFixed(digits));

async function until(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

async function server(name) {
  const dataDir = path.join(root, name);
  mkdirSync(dataDir, { recursive: true });
  const config = {
    ...resolveConfig({ databaseUrl: `sqlite:${path.join(dataDir, 'athanor.db')}`, dataDir }, {}),
    leaseTtlMs: 10_000,
    registrationTtlMs: 20_000,
    sweepIntervalMs: 1000,
  };
  return startBenchServer(config);
}

async function submit(s, count, scope) {
  const network = await s.user.submitNetwork({
    scope,
    name: `n${Date.now()}`,
    transformations: Array.from({ length: count }, (_, i) => ({
      name: `t${i}`,
      protocol: 'sleep',
      inputs: { seconds: 0.1, i },
    })),
  });
  const ids = [];
  for (const tf of network.transformations) ids.push(...(await s.user.createTasks(tf, {})).map((t) => t.id));
  const arrivedAt = Date.now();
  await s.user.actionTasks(network.key, ids);
  return { ids, arrivedAt };
}

const firstClaimMs = async (s, ids, arrivedAt) => {
  await until(
    async () => {
      const row = await s.store.db
        .selectFrom('task_attempts')
        .select('claimed_at')
        .where('task_id', 'in', ids)
        .executeTakeFirst();
      return Boolean(row);
    },
    120_000,
    'first claim',
  );
  const row = await s.store.db
    .selectFrom('task_attempts')
    .select((eb) => eb.fn.min('claimed_at').as('first'))
    .where('task_id', 'in', ids)
    .executeTakeFirst();
  return new Date(row.first).getTime() - arrivedAt;
};

const completeCount = async (s, ids) =>
  Number(
    (
      await s.store.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('id', 'in', ids)
        .where('status', '=', 'complete')
        .executeTakeFirst()
    ).n,
  );

const activeServices = async (s, managerName) =>
  Number(
    (
      await s.store.db
        .selectFrom('compute_services as c')
        .innerJoin('compute_managers as m', 'm.id', 'c.manager_id')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('m.name', '=', managerName)
        .where('c.state', '=', 'active')
        .executeTakeFirst()
    ).n,
  );

function startProcess(args, env) {
  const child = spawn(process.execPath, [cli, ...args], {
    env: {
      ...process.env,
      ATHANOR_COMPUTE_ID: benchCompute.identifier,
      ATHANOR_COMPUTE_KEY: benchCompute.key,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c.toString()));
  return { child, stderr: () => stderr, exited: new Promise((r) => child.on('close', r)) };
}

async function scenario(driver, extraEnv = {}, extraArgs = []) {
  const s = await server(driver);
  const env = {
    ATHANOR_URL: s.url,
    ATHANOR_MANAGER_STATE_DIR: path.join(root, driver, 'managers'),
    ...extraEnv,
  };
  // The peer: a compute service started by hand before the work, long-polling for it.
  const peer = startProcess(['compute', 'run', '--scope', 'peer-camp-p', '--max-idle', '30s'], env);
  await until(
    async () =>
      Number(
        (
          await s.store.db
            .selectFrom('compute_services')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirst()
        ).n,
      ) > 0,
    30_000,
    'peer registered',
  );
  const peerTasks = await submit(s, 100, 'peer-camp-p');
  const peerFirstMs = await firstClaimMs(s, peerTasks.ids, peerTasks.arrivedAt);
  peer.child.kill('SIGTERM');
  await peer.exited;

  const name = `bench-${driver}`;
  const manager = startProcess(
    [
      'compute',
      'manager',
      'run',
      '--driver',
      driver,
      '--name',
      name,
      '--scope',
      'bench-camp-p',
      '--max-services',
      '4',
      '--idle-timeout',
      `${idleTimeoutS}s`,
      '--interval',
      '1s',
      ...extraArgs,
    ],
    env,
  );
  await until(() => /registered as/.test(manager.stderr()), 30_000, 'manager registered');
  await sleep(2000);
  const before = cpuSnapshot(manager.child.pid);
  const idleFrom = Date.now();
  await sleep(idleSeconds * 1000);
  const idleCpuMs = cpuMsBetween(before, cpuSnapshot(manager.child.pid));
  const idleCorePercent = (idleCpuMs / (Date.now() - idleFrom)) * 100;
  log(`${driver}: idle manager ${round(idleCorePercent, 3)} % of a core`);

  const work = await submit(s, 100, 'bench-camp-p');
  const managerFirstMs = await firstClaimMs(s, work.ids, work.arrivedAt);
  await until(async () => (await completeCount(s, work.ids)) === 100, 300_000, 'tasks complete');
  const drainedAt = Date.now();
  await until(async () => (await activeServices(s, name)) === 0, 120_000, 'services gone');
  const lastGoneMs = Date.now() - drainedAt;
  log(
    `${driver}: first claim ${managerFirstMs} ms after demand (running service: ${peerFirstMs} ms); last service gone ${lastGoneMs} ms after the drain`,
  );
  manager.child.kill('SIGTERM');
  await manager.exited;
  await s.app.close();
  await s.store.close();
  return {
    driver,
    firstClaimMs: managerFirstMs,
    runningServiceFirstClaimMs: peerFirstMs,
    firstClaimRatio: round(managerFirstMs / Math.max(1, peerFirstMs), 1),
    lastServiceGoneAfterDrainMs: lastGoneMs,
    idleTimeoutMs: idleTimeoutS * 1000,
    idleManagerCorePercent: round(idleCorePercent, 3),
    idleWindowSeconds: idleSeconds,
  };
}

async function demandTimings() {
  const s = await server('demand');
  const result = [];
  for (const waiting of [1000, waitingLarge]) {
    const network = await s.user.submitNetwork({
      scope: `big-camp-w${waiting}`,
      name: 'big',
      transformations: [{ name: 't', protocol: 'echo', inputs: {} }],
    });
    const tf = network.transformations[0];
    const now = new Date().toISOString();
    await sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${waiting})
      insert into tasks (id, scope, transformation_key, status, priority, attempts, restarts, created_at, created_by, updated_at, lease_token)
      select ${`w${waiting}-`} || cast(i as text), ${`big-camp-w${waiting}`}, ${tf}, 'waiting', 10, 0, 0, ${now}, 'bench', ${now}, 0 from n`.execute(
      s.store.db,
    );
    await sql`insert into hub_tasks (network_key, task_id, weight, actioned_at, priority, claim_key)
      select ${network.key}, id, 0.5, ${now}, 10, abs(random()) / 9223372036854775807.0 from tasks where scope = ${`big-camp-w${waiting}`}`.execute(
      s.store.db,
    );
    const client = new ComputeClient({ url: s.url, ...benchCompute });
    await client.demand({ scopes: [`big-camp-w${waiting}`] });
    const runs = 20;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await client.demand({ scopes: [`big-camp-w${waiting}`] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
    const plan = await s.store.backend.queryPlan(
      s.store.db,
      demandQuery(s.store.db, { scopes: [parseScope(`big-camp-w${waiting}`)], cap: 10_000 }),
    );
    result.push({ waiting, demandRequestMs: round(ms), plan });
    log(`demand at ${waiting} waiting: ${round(ms)} ms per request; plan: ${plan.join(' / ')}`);
  }
  await s.app.close();
  await s.store.close();
  return result;
}

const results = { at: new Date().toISOString(), quick, scenarios: [], demand: [] };
try {
  results.scenarios.push(await scenario('local'));
  const missing = slurmMissing();
  if (missing) {
    log(`Slurm skipped: ${missing}`);
    results.slurmSkipped = missing;
  } else {
    const cluster = await startSlurmCluster();
    try {
      results.scenarios.push(
        await scenario('slurm', cluster.env, ['--slurm-output', path.join(root, 'slurm-%j.out')]),
      );
    } finally {
      cluster.stop();
    }
  }
  results.demand = await demandTimings();
  const dir = path.resolve(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `manager-${results.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.table(results.scenarios);
  console.table(results.demand.map((r) => ({ waiting: r.waiting, demandRequestMs: r.demandRequestMs })));
  log(`wrote ${file}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
