import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import path from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { addIdentity } from '../../src/service/identities.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { startServeProcess } from '../helpers/serve-process.js';
import { freshStore } from '../helpers/store.js';

/**
 * The slowest /healthz answer while the body is submitted; the client runs on a thread of its
 * own (building and sending the body there), so the event loop that answers is the server's.
 */
async function slowestHealthzDuring(url: string, token: string, body: string) {
  const client = new Worker(
    `
    const { parentPort, workerData: { url, token, body } } = require('node:worker_threads');
    // Ahead of the machine's other work where allowed (as root), like the server: on Linux this
    // thread alone.
    try { require('node:os').setPriority(-10); } catch {}
    (async () => {
      let slowestMs = 0;
      let answered = 0;
      let submitting = true;
      const pinger = (async () => {
        while (submitting) {
          const started = performance.now();
          await (await fetch(url + '/healthz')).arrayBuffer();
          slowestMs = Math.max(slowestMs, performance.now() - started);
          answered++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const response = await fetch(url + '/v1/networks', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
        body,
      });
      const text = await response.text();
      submitting = false;
      await pinger;
      parentPort.postMessage({ status: response.status, text, slowestMs, answered });
    })();
    `,
    { eval: true, workerData: { url, token, body } },
  );
  const [result] = (await once(client, 'message')) as [
    { status: number; text: string; slowestMs: number; answered: number },
  ];
  await client.terminate();
  return result;
}

/** 100,000 transformations (5.7 MB), the last one replaced by `last`. */
function networkBody(last?: Record<string, unknown>) {
  const transformations = Array.from({ length: 100_000 }, (_, i) => ({
    name: `t${i}`,
    protocol: 'echo',
    inputs: { i },
  }));
  if (last) transformations[transformations.length - 1] = last as (typeof transformations)[number];
  return JSON.stringify({ scope: 'lab-big-net', name: 'big', transformations });
}

// A guard against stalls of a second or more (a checkpoint inside the commit once took 2.5 s).
// The goal is far lower (under 100 ms; bench/large-submission.js measures it), but on a busy
// shared two-core machine /healthz answers take hundreds of milliseconds whatever the server
// does, so a test cannot hold it to that.
const slowestHealthzBoundMs = 1000;

describeEachBackend('a 100,000-transformation submission to athanor serve', (backend) => {
  const dir = tempDir();

  async function serve() {
    const { store, url: databaseUrl } = await freshStore(backend, dir);
    const key = 'big-user-key-0123456789';
    await addIdentity(store, 'test', { kind: 'user', identifier: 'big', key, scopes: ['lab-*-*'] });
    const server = await startServeProcess(await freePort(), {
      ATHANOR_DATABASE_URL: databaseUrl,
      ATHANOR_DATA_DIR: path.join(dir, `data-${backend}`),
      ATHANOR_OBJECTS_URL: `file:${path.join(dir, `objects-${backend}`)}`,
      ATHANOR_BODY_LIMIT_BYTES: String(64 * 1024 * 1024),
    });
    onTestFinished(() => void server.child.kill('SIGKILL'));
    // What is measured is the server's own event loop, not the other work of a shared machine:
    // where the test may (as root), the server gets ahead of it in the scheduler.
    try {
      os.setPriority(server.child.pid!, -10);
    } catch {
      // Without the privilege the bound still holds, with less margin.
    }
    const response = await fetch(`${server.url}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'big', password: key }),
    });
    const { access_token: token } = (await response.json()) as { access_token: string };
    return { store, url: server.url, token };
  }

  it('leaves /healthz answering while it is parsed, checked and stored', async () => {
    const { url, token } = await serve();
    const result = await slowestHealthzDuring(url, token, networkBody());
    expect(result.status, result.text.slice(0, 300)).toBe(200);
    expect((JSON.parse(result.text) as { transformations: string[] }).transformations).toHaveLength(100_000);
    expect(result.answered).toBeGreaterThan(10);
    expect(result.slowestMs, 'slowest /healthz answer during the submission').toBeLessThan(
      slowestHealthzBoundMs,
    );
  }, 300_000);

  it('is refused with the schema’s 400 naming the bad item, leaving /healthz answering and storing nothing', async () => {
    const { store, url, token } = await serve();
    for (const [last, message] of [
      [
        { name: '', protocol: 'echo', inputs: 1 },
        'body/transformations/99999/name must NOT have fewer than 1 characters',
      ],
      [
        { name: 'x', protocol: 'echo', inputs: 1, extra: true },
        'body/transformations/99999 must NOT have additional properties',
      ],
      [{ name: 'x', protocol: 'echo' }, "body/transformations/99999 must have required property 'inputs'"],
    ] as const) {
      const refused = await slowestHealthzDuring(url, token, networkBody(last));
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.text)).toEqual({ error: { code: 'validation_failed', message } });
      expect(refused.slowestMs, 'slowest /healthz answer while it was refused').toBeLessThan(
        slowestHealthzBoundMs,
      );
    }
    const stored = await store.db.selectFrom('transformations').select('key').execute();
    expect(stored).toEqual([]);
  }, 300_000);
});
