// How long one large network submission holds the server's event loop. `npm run build`, then
// `node bench/large-submission.js`. Submits a network of BENCH_TRANSFORMATIONS (default 100000)
// transformations while /healthz is asked every 10 ms; reports the slowest /healthz answer and the
// longest event-loop stall of the server (the client runs in a worker thread). Writes bench/results/large-submission.json and prints a table.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { resolveConfig } from '../dist/config/resolve-config.js';
import { buildApp } from '../dist/server/app.js';
import { addIdentity } from '../dist/service/identities.js';
import { migrate } from '../dist/store/migrator.js';
import { openStore } from '../dist/store/open-store.js';

const { fetch } = globalThis;
const count = Number(process.env.BENCH_TRANSFORMATIONS ?? 100_000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-bench-'));
const databaseUrl = process.env.BENCH_DATABASE_URL ?? `sqlite:${path.join(dir, 'bench.db')}`;
const config = { ...resolveConfig({ databaseUrl, dataDir: dir }, {}), sweepIntervalMs: 0 };
const store = await openStore(config, { create: true, backgroundCheckpoints: true });
await migrate(store, { lockTimeoutMs: 60_000 });
await addIdentity(store, 'bench', {
  kind: 'user',
  identifier: 'bench',
  key: 'bench-user-key-000',
  scopes: ['*-*-*'],
});
const app = await buildApp({ store, config, logger: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${app.server.address().port}`;
const { access_token: token } = await (
  await fetch(`${url}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bench', password: 'bench-user-key-000' }),
  })
).json();
// The client (building the body, sending it, asking /healthz) runs in a worker thread: the event
// loop measured here is the server's alone.
const client = new Worker(
  `
  const { parentPort, workerData: { url, token, count } } = require('node:worker_threads');
  const body = JSON.stringify({
    scope: 'bench-big-net',
    name: 'big',
    transformations: Array.from({ length: count }, (_, i) => ({ name: 't' + i, protocol: 'echo', inputs: { i } })),
  });
  parentPort.once('message', async () => {
    let slowestHealthMs = 0;
    let submitting = true;
    const pinger = (async () => {
      while (submitting) {
        const started = performance.now();
        await fetch(url + '/healthz');
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - started);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const started = performance.now();
    const response = await fetch(url + '/v1/networks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
      body,
    });
    await response.arrayBuffer();
    const submitMs = performance.now() - started;
    submitting = false;
    await pinger;
    parentPort.postMessage({ bodyBytes: Buffer.byteLength(body), status: response.status, submitMs, slowestHealthMs });
  });
  parentPort.postMessage('ready');
`,
  { eval: true, workerData: { url, token, count } },
);
await once(client, 'message');
const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();
client.postMessage('go');
const [{ bodyBytes, status, submitMs, slowestHealthMs }] = await once(client, 'message');
delay.disable();
await client.terminate();
const result = {
  transformations: count,
  bodyBytes,
  status,
  submitMs: Math.round(submitMs),
  slowestHealthzMs: Math.round(slowestHealthMs),
  longestEventLoopStallMs: Math.round(delay.max / 1e6),
  backend: databaseUrl.split(':')[0],
  cpus: os.cpus().length,
  loadAverage: Number(os.loadavg()[0].toFixed(1)),
};
await app.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(
  path.join(import.meta.dirname, 'results', 'large-submission.json'),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.table(result);
