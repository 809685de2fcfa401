import { text } from 'node:stream/consumers';
import { afterAll, expect, it } from 'vitest';
import { downloadNetworkResults } from '../../src/client/download-results.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { configDefaults } from '../../src/config/resolve-config.js';
import { tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startS3Peer } from '../helpers/s3-peer.js';
import { call, startTestServer } from '../helpers/server.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const maxInlineResultBytes = configDefaults.inlineResultMaxBytes;

/** A result large enough to be stored as a blob (a small one is stored in its row). */
const bytesOf = (task: string | undefined) => `bytes of ${task}`.padEnd(maxInlineResultBytes + 1, '.');

it('with an S3 object store, result downloads redirect to a presigned URL; without the setting they stream', async () => {
  const peer = await startS3Peer();
  afterAll(() => peer.stop());
  const objects = openObjectStore(peer.freshUrl(), { env: peer.env });
  const dir = tempDir();
  const presigning = await startTestServer('sqlite', dir, { presignDownloadsSeconds: 300, app: { objects } });
  const { user, compute, userCredentials } = await queueClients(presigning);
  const { network, tasks } = await networkWithTasks(user, { count: 3 });
  const { id } = await compute.register('presign', 'node-5');
  for (const claim of await compute.claim(id, { count: 3 })) {
    await compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from(bytesOf(claim.task)));
  }
  const [result] = await user.taskResults(tasks[0]!);

  const token = await presigning.token('user', userCredentials.identifier, userCredentials.key);
  const raw = await fetch(`${presigning.url}/v1/results/${result!.id}/download`, {
    headers: { authorization: `Bearer ${token}` },
    redirect: 'manual',
  });
  expect(raw.status).toBe(302);
  const location = new URL(raw.headers.get('location')!);
  // The bytes come from the object store itself, with no Athanor credential.
  expect(location.origin).toBe(new URL(peer.endpoint).origin);
  expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  expect(await (await fetch(location)).text()).toBe(bytesOf(tasks[0]));

  // The typed client follows the redirect, one result or a whole network.
  expect(await text(await user.downloadResult(result!.id))).toBe(bytesOf(tasks[0]));
  const folder = path.join(dir, 'network-results');
  const summary = await downloadNetworkResults(user, network, folder, { concurrency: 2, cacheDir: false });
  expect(summary).toMatchObject({ total: 3, downloaded: 3 });
  const entries = JSON.parse(await readFile(summary.index, 'utf8')) as { file: string }[];
  const contents = await Promise.all(entries.map((e) => readFile(path.join(folder, e.file), 'utf8')));
  expect(contents.sort()).toEqual(tasks.map((t) => bytesOf(t)).sort());

  // The same store without the setting: the API streams the bytes itself.
  const streaming = await startTestServer('sqlite', tempDir(), { store: presigning.store, app: { objects } });
  const streamed = await call(streaming.url, token, 'GET', `/v1/results/${result!.id}/download`);
  expect(streamed.status).toBe(200);
  expect(streamed.text).toBe(bytesOf(tasks[0]));

  // A small result is stored in its row, not in the object store: it streams even when presigning.
  const small = await networkWithTasks(user, { count: 1, name: 'small-results' });
  const [claim] = await compute.claim(id, { count: 1 });
  expect(claim!.task).toBe(small.tasks[0]);
  await compute.submitResult(claim!.task, claim!.leaseToken, 'ok', Buffer.from('small bytes'));
  const [inline] = await user.taskResults(claim!.task);
  const inlineRaw = await fetch(`${presigning.url}/v1/results/${inline!.id}/download`, {
    headers: { authorization: `Bearer ${token}` },
    redirect: 'manual',
  });
  expect(inlineRaw.status).toBe(200);
  expect(inlineRaw.headers.get('x-athanor-sha256')).toBe(inline!.sha256);
  expect(await inlineRaw.text()).toBe('small bytes');
});
