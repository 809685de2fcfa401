// One benchmark worker process: an Athanor compute service, a graphile-worker runner or a pg-boss
// worker. It prints "ready" once set up, starts on "go" from stdin and prints one JSON line at the
// end: its CPU ms since "go" and, for Athanor, its claim latencies and empty claims. An Athanor
// worker drains the queue, or with `claims` makes that many claims and stops.
// Usage: node bench/worker.js '<json options>'
import { createInterface } from 'node:readline';

const options = JSON.parse(process.argv[2]);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
const noop = async () => {};

async function athanor() {
  const { ComputeClient } = await import('../dist/client/index.js');
  const client = new ComputeClient({ url: options.url, identifier: 'benchc', key: 'bench-compute-key' });
  const { id } = await client.register('bench');
  process.stdout.write('ready\n');
  await nextLine();
  const cpu = process.cpuUsage();
  const latencies = [];
  let emptyInARow = 0;
  let emptyWhileWorkWaited = 0;
  let processed = 0;
  // A claim that comes back empty while the queue still holds work shows as an empty claim
  // followed by a non-empty one; three empty claims in a row end the drain.
  // With `exchange`, the results of a claim go out with the next claim, in one request.
  let results = [];
  const report = async (claim) => {
    const answer = await client.exchange(id, { results, claim });
    processed += answer.results.filter((r) => r.result).length;
    results = [];
    return answer.claims;
  };
  // With `claims`, a fixed number of claims into a queue that never runs dry: every empty one counts.
  const more = () => (options.claims ? latencies.length < options.claims : emptyInARow < 3);
  while (more()) {
    const t0 = performance.now();
    const claims = options.exchange
      ? await report({ count: options.count })
      : await client.claim(id, { count: options.count });
    latencies.push(performance.now() - t0);
    if (claims.length === 0) {
      emptyInARow += 1;
      if (options.claims) emptyWhileWorkWaited += 1;
      continue;
    }
    if (!options.claims) emptyWhileWorkWaited += emptyInARow;
    emptyInARow = 0;
    const result = (c) => Buffer.from(`result of ${c.task}`);
    if (options.exchange) {
      results = claims.map((c) => ({
        task: c.task,
        leaseToken: c.leaseToken,
        outcome: 'ok',
        body: result(c),
      }));
      continue;
    }
    for (const c of claims) await client.submitResult(c.task, c.leaseToken, 'ok', result(c));
    processed += claims.length;
  }
  if (results.length > 0) await report(undefined);
  const used = process.cpuUsage(cpu);
  await client.deregister(id);
  return { latencies, emptyWhileWorkWaited, processed, cpuMs: (used.user + used.system) / 1000 };
}

async function graphileWorker() {
  const { run, Logger } = await import('graphile-worker');
  const logger = new Logger(() => noop);
  process.stdout.write('ready\n');
  await nextLine();
  const cpu = process.cpuUsage();
  let processed = 0;
  const runner = await run({
    connectionString: options.url,
    concurrency: options.concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger,
    preset: options.localQueue ? { worker: { localQueue: { size: options.localQueue } } } : undefined,
    taskList: { bench: async () => void (processed += 1) },
  });
  runner.events.on('error', noop);
  await nextLine();
  const used = process.cpuUsage(cpu);
  await runner.stop();
  return { processed, cpuMs: (used.user + used.system) / 1000 };
}

async function pgBoss() {
  const { default: PgBoss } = await import('pg-boss');
  const boss = new PgBoss({
    connectionString: options.url,
    supervise: false,
    schedule: false,
    migrate: false,
  });
  boss.on('error', noop);
  await boss.start();
  process.stdout.write('ready\n');
  await nextLine();
  const cpu = process.cpuUsage();
  let processed = 0;
  for (let i = 0; i < options.concurrency; i++)
    await boss.work('bench', { batchSize: options.count, pollingIntervalSeconds: 0.5 }, async (jobs) => {
      processed += jobs.length;
    });
  await nextLine();
  const used = process.cpuUsage(cpu);
  await boss.stop({ graceful: false, wait: false });
  return { processed, cpuMs: (used.user + used.system) / 1000 };
}

const kinds = { athanor, 'graphile-worker': graphileWorker, 'pg-boss': pgBoss };
const result = await kinds[options.kind]();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
