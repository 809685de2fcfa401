import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { DeploySettings } from '../../src/ops/deploy/index.js';
import {
  proxyWorkers,
  renderUpstream,
  switchColour,
  writeUpstreamAtomically,
} from '../../src/ops/deploy/index.js';
import { tempDir } from '../helpers/backends.js';
import { nginxBinary, startNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { freshStore } from '../helpers/store.js';

const nginx = nginxBinary();
if (!nginx) {
  if (process.env.CI === 'true') throw new Error('nginx is required under CI=true: apt-get install nginx');
  console.warn('SKIPPED: the nginx worker drain test needs nginx (apt-get install nginx)');
}

/** A colour that answers every request with its name and counts them on `/readyz`, as serve does. */
async function colour(name: string) {
  let requests = 0;
  const server = http.createServer((request, response) => {
    if (request.url === '/readyz') {
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          status: 'ready',
          version: '1.0.0',
          schema: 1,
          releaseSchema: 1,
          inFlight: 0,
          requests,
        }),
      );
      return;
    }
    requests++;
    response.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

describe('deploy switch behind a real nginx', () => {
  const dir = tempDir();

  it.runIf(nginx !== undefined)(
    'returns only once the workers from before the reload have exited, even when nginx is slow to reload',
    { timeout: 120_000 },
    async () => {
      const { store } = await freshStore('sqlite', dir);
      const blue = await colour('blue');
      const green = await colour('green');
      const prefix = path.join(dir, 'nginx');
      mkdirSync(prefix, { recursive: true });
      await writeUpstreamAtomically(
        path.join(prefix, 'athanor-upstream.conf'),
        renderUpstream('blue', blue.url),
      );
      const proxy = await startNginx(nginx as string, prefix, await freePort());
      onTestFinished(() => proxy.stop());
      const pidFile = path.join(prefix, 'nginx.pid');
      const before = await proxyWorkers(pidFile);
      expect(before?.workerPids.length).toBe(2);
      expect(await (await fetch(`${proxy.url}/x`)).text()).toBe('blue');

      // `nginx -s reload` only signals the master and returns; a busy master takes its time to
      // start the new workers. Here it takes 2.5 s, with no traffic meanwhile: a retired colour
      // that merely looked quiet for a second was not drained at all.
      const settings: DeploySettings = {
        urls: { blue: blue.url, green: green.url },
        upstreamFile: proxy.upstreamFile,
        testCommand: proxy.testCommand,
        reloadCommand: `(sleep 2.5; ${proxy.reloadCommand}) >/dev/null 2>&1 &`,
        drainTimeoutMs: 60_000,
        proxyPidFile: pidFile,
      };
      const steps: string[] = [];
      const outcome = await switchColour(store, settings, 'green', {
        actor: 'test',
        verb: 'switch',
        onStep: (line) => steps.push(line),
      });
      expect(outcome.switched).toBe(true);
      expect(outcome.drainedMs).toBeGreaterThanOrEqual(2_000);
      expect(steps.join('\n')).toContain("nginx's workers from before the reload");
      // From the moment the switch returns, blue can be stopped: nothing reaches it any more.
      const blueBefore = blue.requests();
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => (await fetch(`${proxy.url}/x`)).text()),
      );
      expect(answers).toEqual(Array.from({ length: 20 }, () => 'green'));
      expect(blue.requests()).toBe(blueBefore);
      const after = await proxyWorkers(pidFile);
      expect(after?.workerPids.some((pid) => before?.workerPids.includes(pid))).toBe(false);
    },
  );
});
