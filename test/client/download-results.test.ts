import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const count = 2000;
const resultOf = (i: number) => `{"transformation":${i},"payload":"${'r'.repeat(i % 97)}"}`;
const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

describeEachBackend('downloading a whole network', (backend) => {
  const dir = tempDir();

  it(
    `downloads ${count} results in full, resumes with nothing to fetch, and re-fetches a damaged cache entry`,
    { timeout: 600_000 },
    async () => {
      const server = await startTestServer(backend, dir);
      const { user, compute, userCredentials } = await queueClients(server);
      const { network, transformations } = await networkWithTasks(user, { count, name: 'many' });
      const { id } = await compute.register('producer');
      const indexOf = new Map(transformations.map((key, i) => [key, i]));
      for (let claimed = 0; claimed < count;) {
        const claims = await compute.claim(id, { count: 1000 });
        claimed += claims.length;
        for (let i = 0; i < claims.length; i += 20) {
          await Promise.all(
            claims
              .slice(i, i + 20)
              .map((c) =>
                compute.submitResult(
                  c.task,
                  c.leaseToken,
                  'ok',
                  Buffer.from(resultOf(indexOf.get(c.transformation.key)!)),
                ),
              ),
          );
        }
      }
      const listed = await user.networkResults(network, { limit: 10_000 });
      expect(listed).toHaveLength(count);
      expect(listed.every((r) => r.outcome === 'ok')).toBe(true);
      const page = await user.networkResults(network, { limit: 700, after: listed[699]!.transformation });
      expect(page.map((r) => r.transformation)).toEqual(listed.slice(700, 1400).map((r) => r.transformation));
      expect(await user.networkResults(network, { outcome: 'failed' })).toEqual([]);

      const out = path.join(dir, `out-${backend}`);
      const cacheDir = path.join(dir, `cache-${backend}`);
      const seen: number[] = [];
      const first = await user.downloadNetworkResults(network, out, {
        cacheDir,
        concurrency: 8,
        onProgress: (p) => seen.push(p.done),
      });
      expect(first).toMatchObject({ total: count, downloaded: count, fromCache: 0, present: 0 });
      expect(seen.at(-1)).toBe(count);
      for (const [key, i] of indexOf) expect(readFileSync(path.join(out, key), 'utf8')).toBe(resultOf(i));
      expect(readdirSync(out).filter((f) => f.endsWith('.partial'))).toEqual([]);
      const index = JSON.parse(readFileSync(first.index, 'utf8')) as {
        transformation: string;
        file: string;
      }[];
      expect(index).toHaveLength(count);

      // Run again from the command line: everything is already there.
      const env = {
        ATHANOR_URL: server.url,
        ATHANOR_ID: userCredentials.identifier,
        ATHANOR_KEY: userCredentials.key,
      };
      const again = await runCli(
        ['result', 'download', '--network', network, out, '--cache-dir', cacheDir, '--json'],
        { env },
      );
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({
        total: count,
        downloaded: 0,
        fromCache: 0,
        present: count,
      });

      // A fresh folder fills from the cache, except the one entry whose bytes were damaged.
      const damagedKey = transformations[5]!;
      const damagedSha = sha256(resultOf(5));
      writeFileSync(path.join(cacheDir, damagedSha.slice(0, 2), damagedSha), 'not the result');
      // A file cut short in the first folder is fetched again too.
      const cutKey = transformations[6]!;
      writeFileSync(path.join(out, cutKey), resultOf(6).slice(0, 5));
      const fresh = path.join(dir, `fresh-${backend}`);
      const third = await user.downloadNetworkResults(network, fresh, { cacheDir });
      expect(third).toMatchObject({ total: count, downloaded: 1, fromCache: count - 1, present: 0 });
      expect(readFileSync(path.join(fresh, damagedKey), 'utf8')).toBe(resultOf(5));
      expect(readFileSync(path.join(cacheDir, damagedSha.slice(0, 2), damagedSha), 'utf8')).toBe(resultOf(5));
      const fourth = await user.downloadNetworkResults(network, out, { cacheDir });
      expect(fourth).toMatchObject({ downloaded: 0, fromCache: 1, present: count - 1 });
      expect(readFileSync(path.join(out, cutKey), 'utf8')).toBe(resultOf(6));

      // A cache capped below one result keeps nothing; downloads still complete without it.
      rmSync(fresh, { recursive: true });
      const capped = path.join(dir, `capped-${backend}`);
      const small = await user.downloadNetworkResults(network, fresh, {
        cacheDir: capped,
        cacheMaxBytes: 10,
      });
      expect(small.downloaded).toBe(count);
      expect(readdirSync(capped, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())).toEqual(
        [],
      );
    },
  );

  it("lists a transformation's ok result over its failures, and answers 404 outside the caller's scopes", async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const retried = await networkWithTasks(user, { count: 1, name: 'retried' });
    const { id } = await compute.register('picker');
    const [failing] = await compute.claim(id, { count: 1 });
    const failed = await compute.submitResult(
      failing!.task,
      failing!.leaseToken,
      'failed',
      Buffer.from('Error: x'),
    );
    const [again] = await user.createTasks(retried.transformations[0]!);
    await user.actionTasks(retried.network, [again!.id]);
    const [second] = await compute.claim(id, { count: 1 });
    const ok = await compute.submitResult(second!.task, second!.leaseToken, 'ok', Buffer.from('{}'));
    expect((await user.networkResults(retried.network)).map((r) => [r.result, r.outcome, r.task])).toEqual([
      [ok.result, 'ok', again!.id],
    ]);
    expect((await user.networkResults(retried.network, { outcome: 'failed' })).map((r) => r.result)).toEqual([
      failed.result,
    ]);
    const outsider = (await queueClients(server, 'other-camp-*')).user;
    const { network } = await networkWithTasks(user, { count: 1 });
    await expect(outsider.networkResults(network)).rejects.toMatchObject({ code: 'not_found' });
    await expect(outsider.downloadNetworkResults(network, path.join(dir, 'nope'))).rejects.toMatchObject({
      code: 'not_found',
    });
  });
});
