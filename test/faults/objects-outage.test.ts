import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { configDefaults } from '../../src/config/resolve-config.js';
import { blobKey } from '../../src/objects/blob-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startS3Peer } from '../helpers/s3-peer.js';
import { startTestServer } from '../helpers/server.js';
import { startAthanor } from './processes.js';
import { startTcpProxy } from './tcp-proxy.js';
import { until } from '../helpers/until.js';

/** Bytes past the default row limit: such a result can only be recorded once its blob is in S3. */
const largeResultBytes = configDefaults.inlineResultMaxBytes + 1000;

/** A server on an S3 object store reached through a proxy the test can take down and bring back. */
async function serverBehindS3Proxy() {
  const peer = await startS3Peer();
  const proxy = await startTcpProxy(Number(new URL(peer.endpoint).port));
  afterAll(async () => {
    await proxy.close();
    await peer.stop();
  });
  const objects = openObjectStore(peer.freshUrl(), {
    env: { ...peer.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` },
  });
  const dir = tempDir();
  const server = await startTestServer('sqlite', dir, { app: { objects } });
  return { dir, proxy, objects, server, ...(await queueClients(server)) };
}

function computeRun(credentials: { url: string; identifier: string; key: string }, args: string[] = []) {
  return startAthanor(['compute', 'run', '-c', '4', ...args], {
    ATHANOR_URL: credentials.url,
    ATHANOR_COMPUTE_ID: credentials.identifier,
    ATHANOR_COMPUTE_KEY: credentials.key,
  });
}

it('the S3 peer going away during uploads of results too large for their row costs retries only: every result lands once, with its blob', async () => {
  const { dir, proxy, objects, server, user, computeCredentials } = await serverBehindS3Proxy();
  // Sleeps like `sleep`, then answers bytes past the row limit, different for every task.
  const plugin = path.join(dir, 'large-results.mjs');
  writeFileSync(
    plugin,
    `export async function sleepLarge(inputs, context) {
  await new Promise((resolve) => setTimeout(resolve, inputs.seconds * 1000));
  return Buffer.alloc(${largeResultBytes}, 'task ' + context.task + ' ');
}
`,
  );
  const { network, tasks } = await networkWithTasks(user, {
    count: 60,
    protocol: 'sleepLarge',
    inputs: (i) => ({ seconds: 0.1, i }),
  });
  const run = computeRun(computeCredentials, ['--protocols', plugin]);
  const complete = async () => (await user.networkStatus(network)).complete ?? 0;
  await until('the drain to be under way', async () => (await complete()) >= 8, 30_000);

  await proxy.down();
  const duringOutage = await complete();
  await new Promise((r) => setTimeout(r, 3000));
  // Nothing completes without its blob: the count did not move while S3 was away.
  expect(await complete()).toBe(duringOutage);
  await proxy.up();
  // At most 4 tasks were in flight: 8 more completions within 5 s means new claims finished.
  await until('work to resume', async () => (await complete()) >= duringOutage + 8, 5_000);
  await until('every task to complete', async () => (await complete()) === 60, 60_000);

  expect(run.alive(), run.log()).toBe(true);
  const results = await server.store.db
    .selectFrom('results')
    .select(['task_id', 'outcome', 'blob_sha256', 'size_bytes', 'body'])
    .execute();
  expect(results.map((r) => r.task_id).sort()).toEqual([...tasks].sort());
  for (const r of results) {
    expect(r).toMatchObject({ outcome: 'ok', size_bytes: largeResultBytes, body: null });
    const expected = Buffer.alloc(largeResultBytes, `task ${r.task_id} `);
    expect(r.blob_sha256).toBe(createHash('sha256').update(expected).digest('hex'));
    expect(await objects.head(blobKey(r.blob_sha256!))).toBeDefined();
  }
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
});

it('while S3 is down, small results keep completing in their rows and download; the object store is never asked for them', async () => {
  const { proxy, objects, server, user, computeCredentials } = await serverBehindS3Proxy();
  const { network, tasks } = await networkWithTasks(user, {
    count: 40,
    protocol: 'sleep',
    inputs: (i) => ({ seconds: 0.1, i }),
  });
  const complete = async () => (await user.networkStatus(network)).complete ?? 0;
  await proxy.down();
  const run = computeRun(computeCredentials);
  // The whole drain happens with S3 away.
  await until('every task to complete while S3 is down', async () => (await complete()) === 40, 60_000);
  const [first] = await user.taskResults(tasks[0]!);
  const downloaded = Buffer.concat(await (await user.downloadResult(first!.id)).toArray());
  expect(createHash('sha256').update(downloaded).digest('hex')).toBe(first!.sha256);
  expect(JSON.parse(downloaded.toString())).toEqual({ slept: 0.1 });

  expect(run.alive(), run.log()).toBe(true);
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
  await proxy.up();
  const results = await server.store.db
    .selectFrom('results')
    .select(['task_id', 'outcome', 'blob_sha256', 'body'])
    .execute();
  expect(results.map((r) => r.task_id).sort()).toEqual([...tasks].sort());
  for (const r of results) {
    expect(r.outcome).toBe('ok');
    expect(Buffer.isBuffer(r.body)).toBe(true);
    expect(createHash('sha256').update(r.body!).digest('hex')).toBe(r.blob_sha256);
    // Kept in its row only: no blob was written for it once S3 came back either.
    expect(await objects.head(blobKey(r.blob_sha256!))).toBeUndefined();
  }
});
