import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { configDefaults } from '../../src/config/resolve-config.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { ConsoleClient } from '../helpers/console-client.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** Printable bytes (the console client reads text), `sizeBytes` long, different every time. */
const printable = (sizeBytes: number) =>
  randomBytes(Math.ceil(sizeBytes / 2))
    .toString('hex')
    .slice(0, sizeBytes);

describeEachBackend('downloads of results stored in their rows', (backend) => {
  it('the console and the TypeScript client hand out in-row and blob results byte for byte', async () => {
    const dir = tempDir();
    const server = await startTestServer(backend, dir);
    const { user, compute, userCredentials } = await queueClients(server);
    const { network, transformations } = await networkWithTasks(user, { count: 4, name: 'downloads' });
    const { id } = await compute.register('downloads');
    const claims = await compute.claim(id, { count: 4 });
    const limit = configDefaults.inlineResultMaxBytes;
    const sizes = [1, 1000, limit, limit + 1];
    const bodies = new Map<string, string>();
    for (const [i, claim] of claims.entries()) {
      const body = printable(sizes[i]!);
      bodies.set(claim.transformation.key, body);
      await compute.submitResult(claim.task, claim.leaseToken, 'ok', Buffer.from(body));
    }
    // Three in their rows, the one past the limit a blob.
    const rows = await server.store.db.selectFrom('results').select(['size_bytes', 'body']).execute();
    expect(
      rows
        .filter((r) => r.body !== null)
        .map((r) => Number(r.size_bytes))
        .sort((a, b) => a - b),
    ).toEqual([1, 1000, limit]);

    const browser = new ConsoleClient(server.url);
    expect((await browser.signIn(userCredentials.identifier, userCredentials.key)).status).toBe(303);
    for (const claim of claims) {
      const [result] = await user.taskResults(claim.task);
      const body = bodies.get(claim.transformation.key)!;
      const page = await browser.get(`/console/tasks/${claim.task}`);
      expect(page.status).toBe(200);
      expect(page.text).toContain(`/console/results/${result!.id}/download`);
      const download = await browser.get(`/console/results/${result!.id}/download`);
      expect(download.status).toBe(200);
      expect(download.headers.get('x-athanor-sha256')).toBe(sha256(body));
      expect(download.headers.get('content-length')).toBe(String(body.length));
      expect(download.headers.get('content-disposition')).toContain(`${result!.id}.bin`);
      expect(download.text).toBe(body);
    }

    const out = path.join(dir, `out-${backend}`);
    const summary = await user.downloadNetworkResults(network, out, {
      cacheDir: path.join(dir, `cache-${backend}`),
    });
    expect(summary).toMatchObject({ total: 4, downloaded: 4 });
    for (const key of transformations)
      expect(readFileSync(path.join(out, key), 'utf8')).toBe(bodies.get(key));
  });
});
