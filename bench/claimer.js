// One benchmark claimer: claims ten tasks at a time and submits a tiny result for each until the
// queue is empty. Run as a file (`BENCH_PROCESSES=1`) it prints its claim latencies as JSON.
import { pathToFileURL } from 'node:url';
import { ComputeClient } from '../dist/client/index.js';

/** Drains the queue at `url`, appending each claim's latency in ms to `latencies`. */
export async function drainQueue(url, latencies) {
  const client = new ComputeClient({ url, identifier: 'benchc', key: 'bench-compute-key' });
  const { id } = await client.register('bench');
  for (;;) {
    const t0 = performance.now();
    const claims = await client.claim(id, { count: 10 });
    latencies.push(performance.now() - t0);
    if (claims.length === 0) break;
    for (const c of claims)
      await client.submitResult(c.task, c.leaseToken, 'ok', Buffer.from(`result of ${c.task}`));
  }
  await client.deregister(id);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const latencies = [];
  await drainQueue(process.argv[2], latencies);
  process.stdout.write(JSON.stringify(latencies));
}
