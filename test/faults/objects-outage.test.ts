import { afterAll, expect, it } from 'vitest';
import { blobKey } from '../../src/objects/blob-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startS3Peer } from '../helpers/s3-peer.js';
import { startTestServer } from '../helpers/server.js';
import { startAthanor } from './processes.js';
import { startTcpProxy } from './tcp-proxy.js';
import { until } from '../helpers/until.js';

it('the S3 peer going away during result uploads costs retries only: every result lands once, with its blob', async () => {
  const peer = await startS3Peer();
  const proxy = await startTcpProxy(Number(new URL(peer.endpoint).port));
  afterAll(async () => {
    await proxy.close();
    await peer.stop();
  });
  const objects = openObjectStore(peer.freshUrl(), {
    env: { ...peer.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` },
  });
  const server = await startTestServer('sqlite', tempDir(), { app: { objects } });
  const { user, computeCredentials } = await queueClients(server);
  const { network, tasks } = await networkWithTasks(user, {
    count: 60,
    protocol: 'sleep',
    inputs: (i) => ({ seconds: 0.1, i }),
  });
  const run = startAthanor(['compute', 'run', '-c', '4'], {
    ATHANOR_URL: computeCredentials.url,
    ATHANOR_COMPUTE_ID: computeCredentials.identifier,
    ATHANOR_COMPUTE_KEY: computeCredentials.key,
  });
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
    .select(['task_id', 'outcome', 'blob_sha256'])
    .execute();
  expect(results.map((r) => r.task_id).sort()).toEqual([...tasks].sort());
  expect(results.every((r) => r.outcome === 'ok')).toBe(true);
  for (const r of results) expect(await objects.head(blobKey(r.blob_sha256!))).toBeDefined();
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
});
