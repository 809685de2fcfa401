import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect, it, onTestFinished } from 'vitest';
import { ComputeClient } from '../../src/client/compute-client.js';
import { UserClient } from '../../src/client/user-client.js';
import type { Colour } from '../../src/ops/deploy/index.js';
import { otherColour, renderUpstream } from '../../src/ops/deploy/index.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { nginxBinary, startNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/postgres-cluster.js';
import type { ServeProcess } from '../helpers/serve-process.js';
import { startServeProcess } from '../helpers/serve-process.js';
import { seedQueueIdentities } from '../helpers/identities.js';
import { freshStore } from '../helpers/store.js';

const nginx = nginxBinary();
if (!nginx) {
  if (process.env.CI === 'true') throw new Error('nginx is required under CI=true: apt-get install nginx');
  console.warn('SKIPPED: the blue/green switch test needs nginx (apt-get install nginx)');
}

const switches = 5;
const userLoops = 3;
const computeLoops = 3;
const largeResultBytes = 2 * 1024 * 1024;
const maxBacklog = 24;

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** A result body; every fourth one is 2 MiB, trickled out over about a second. */
function resultBody(task: string, n: number): { body: Readable | Buffer; sha256: string } {
  if (n % 4 !== 0) {
    const small = Buffer.from(JSON.stringify({ task, n }));
    return { body: small, sha256: createHash('sha256').update(small).digest('hex') };
  }
  const chunk = Buffer.alloc(256 * 1024, task);
  const count = largeResultBytes / chunk.length;
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) hash.update(chunk);
  let sent = 0;
  const body = new Readable({
    read() {
      if (sent === count) return;
      setTimeout(() => {
        sent++;
        this.push(chunk);
        if (sent === count) this.push(null);
      }, 1000 / count);
    },
  });
  return { body, sha256: hash.digest('hex') };
}

describeEachBackend('blue/green switches behind nginx under load', (backend) => {
  const dir = tempDir();

  it.runIf(nginx !== undefined)(
    `${switches} switches and a rollback lose no request, no task and no result`,
    { timeout: 300_000 },
    async () => {
      const { store, url: databaseUrl } = await freshStore(backend, dir);
      const { user: alice, compute: hpc } = await seedQueueIdentities(store);
      const userKey = alice.key;
      const computeKey = hpc.key;
      const ports: Record<Colour, number> = { blue: await freePort(), green: await freePort() };
      const serveEnv = {
        ATHANOR_DATABASE_URL: databaseUrl,
        ATHANOR_DATA_DIR: path.join(dir, 'data'),
        ATHANOR_OBJECTS_URL: `file:${path.join(dir, 'objects')}`,
        ATHANOR_SHUTDOWN_DELAY_MS: '0',
      };
      const colours: Partial<Record<Colour, ServeProcess>> = {};
      const start = async (colour: Colour) =>
        (colours[colour] = await startServeProcess(ports[colour], serveEnv));
      const stop = async (colour: Colour) => {
        const server = colours[colour];
        server?.child.kill('SIGTERM');
        expect(await server?.exited, server?.log()).toBe(0);
      };
      await Promise.all([start('blue'), start('green')]);
      onTestFinished(() => {
        for (const server of Object.values(colours)) server.child.kill('SIGKILL');
      });

      const prefix = path.join(dir, 'nginx');
      const upstreamFile = path.join(prefix, 'athanor-upstream.conf');
      await import('node:fs/promises').then((fs) => fs.mkdir(prefix, { recursive: true }));
      // The first install writes the upstream once; every change after it is 'deploy switch'.
      writeFileSync(upstreamFile, renderUpstream('blue', `http://127.0.0.1:${ports.blue}`));
      const proxy = await startNginx(nginx as string, prefix, await freePort());
      onTestFinished(() => proxy.stop());
      const deployEnv = {
        ATHANOR_DATABASE_URL: databaseUrl,
        ATHANOR_DEPLOY_BLUE_URL: `http://127.0.0.1:${ports.blue}`,
        ATHANOR_DEPLOY_GREEN_URL: `http://127.0.0.1:${ports.green}`,
        ATHANOR_DEPLOY_UPSTREAM_FILE: proxy.upstreamFile,
        ATHANOR_DEPLOY_TEST_COMMAND: proxy.testCommand,
        ATHANOR_DEPLOY_RELOAD_COMMAND: proxy.reloadCommand,
        ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS: '60000',
        ATHANOR_DEPLOY_PROXY_PID_FILE: path.join(prefix, 'nginx.pid'),
      };
      const deploy = (args: string[]) => runCli(['deploy', ...args], { env: deployEnv });

      // Load through nginx: users read and submit work, compute loops claim and upload results.
      const user = new UserClient({ url: proxy.url, identifier: 'alice', key: userKey });
      const failures: string[] = [];
      const latencies: { at: number; ms: number }[] = [];
      const timed = async <T>(what: string, call: () => Promise<T>): Promise<T | undefined> => {
        const started = performance.now();
        try {
          const value = await call();
          latencies.push({ at: Date.now(), ms: performance.now() - started });
          return value;
        } catch (error) {
          failures.push(`${what}: ${(error as Error).message}`);
          return undefined;
        }
      };
      const created = new Set<string>();
      const claimsOf = new Map<string, number>();
      const uploaded = new Map<string, string>();
      let running = true;
      let usersDone = false;
      let submitted = 0;

      const userLoop = async (loop: number) => {
        while (running) {
          // Users submit as fast as the compute loops keep up, so the queue stays short and the
          // drain at the end takes seconds: the switches happen under steady load both ways.
          if (created.size - uploaded.size > maxBacklog) {
            await new Promise((r) => setTimeout(r, 50));
            continue;
          }
          const n = submitted++;
          const network = await timed('submit network', () =>
            user.submitNetwork({
              scope: 'org-camp-p',
              name: `load-${loop}-${n}`,
              transformations: [{ name: `t${n}`, protocol: 'echo', inputs: { loop, n } }],
            }),
          );
          if (!network) continue;
          const tasks = await timed('create tasks', () =>
            user.createTasks(network.transformations[0]!, { count: 2 }),
          );
          if (!tasks) continue;
          if (
            !(await timed('action tasks', () =>
              user.actionTasks(
                network.key,
                tasks.map((t) => t.id),
              ),
            ))
          )
            continue;
          for (const task of tasks) created.add(task.id);
          await timed('read status', () => user.networkStatus(network.key));
          await timed('list networks', () => user.listNetworks({ scope: 'org-camp-p', limit: 20 }));
        }
      };
      const computeLoop = async (loop: number) => {
        const compute = new ComputeClient({ url: proxy.url, identifier: 'hpc', key: computeKey });
        const service = await timed('register', () => compute.register(`worker-${loop}`));
        if (!service) return;
        let n = loop;
        for (;;) {
          const loadEnded = usersDone;
          const claims = await timed('claim', () => compute.claim(service.id, { count: 2, waitMs: 1000 }));
          for (const claim of claims ?? []) {
            claimsOf.set(claim.task, (claimsOf.get(claim.task) ?? 0) + 1);
            const { body, sha256 } = resultBody(claim.task, n++);
            const stored = await timed('upload result', () =>
              compute.submitResult(claim.task, claim.leaseToken, 'ok', body),
            );
            if (stored?.sha256 === sha256) uploaded.set(claim.task, sha256);
          }
          // Once the users stopped, an empty claim means the queue is drained; a failed claim is
          // already in the failures, so it ends the loop too.
          if (loadEnded && (claims === undefined || claims.length === 0)) break;
        }
        await timed('deregister', () => compute.deregister(service.id));
      };
      const load = [
        ...Array.from({ length: userLoops }, (_, i) => userLoop(i)),
        ...Array.from({ length: computeLoops }, (_, i) => computeLoop(i)),
      ];

      // A stretch without switches, as long as one switch takes, for the latency comparison.
      const baselineStarted = Date.now();
      await new Promise((r) => setTimeout(r, 5_000));
      const baselineEnded = Date.now();

      let live: Colour = 'blue';
      const switchWindows: [number, number][] = [];
      for (let i = 0; i < switches; i++) {
        const target = otherColour(live);
        const began = Date.now();
        const result = await deploy(['switch', target]);
        expect(result.code, result.stderr).toBe(0);
        expect(readFileSync(proxy.upstreamFile, 'utf8')).toContain(`# athanor-live: ${target}`);
        // The retired colour drained; restart it as the next release.
        await stop(live);
        await start(live);
        switchWindows.push([began, Date.now()]);
        live = target;
      }
      // A switch to a colour that is down is refused, and traffic stays where it was.
      const retired = otherColour(live);
      await stop(retired);
      const refused = await deploy(['switch', retired]);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toContain('not ready');
      expect(readFileSync(proxy.upstreamFile, 'utf8')).toContain(`# athanor-live: ${live}`);
      await start(retired);
      // One command undoes the last switch.
      const began = Date.now();
      const rollback = await deploy(['rollback']);
      expect(rollback.code, rollback.stderr).toBe(0);
      const back = otherColour(live);
      expect(readFileSync(proxy.upstreamFile, 'utf8')).toContain(`# athanor-live: ${back}`);
      switchWindows.push([began, Date.now()]);

      running = false;
      await Promise.all(load.slice(0, userLoops));
      usersDone = true;
      await Promise.all(load);

      expect(failures).toEqual([]);
      // Every task created was claimed exactly once, and its result is stored with its bytes.
      expect(created.size).toBeGreaterThan(0);
      const rows = await store.db
        .selectFrom('tasks')
        .select(['id', 'status'])
        .where('id', 'in', [...created])
        .execute();
      expect(rows.filter((r) => r.status !== 'complete')).toEqual([]);
      expect([...created].filter((t) => claimsOf.get(t) !== 1)).toEqual([]);
      const results = await store.db
        .selectFrom('results')
        .select(['task_id', 'blob_sha256'])
        .where('task_id', 'in', [...created])
        .execute();
      expect(new Map(results.map((r) => [r.task_id, r.blob_sha256]))).toEqual(uploaded);
      expect(uploaded.size).toBe(created.size);

      const log = JSON.parse((await deploy(['log', '--json'])).stdout) as {
        action: string;
        outcome: string;
      }[];
      expect(log.filter((e) => e.outcome === 'ok').map((e) => e.action)).toEqual([
        'deploy.rollback',
        ...Array.from({ length: switches }, () => 'deploy.switch'),
      ]);
      const status = JSON.parse((await deploy(['status', '--json'])).stdout) as { live: Colour };
      expect(status.live).toBe(back);

      const inWindow = (at: number) => switchWindows.some(([a, b]) => at >= a && at <= b);
      const during = latencies.filter((l) => inWindow(l.at)).map((l) => l.ms);
      const baseline = latencies
        .filter((l) => l.at >= baselineStarted && l.at <= baselineEnded)
        .map((l) => l.ms);
      console.log(
        `[${backend}] ${latencies.length} requests, ${failures.length} failed; ${created.size} tasks, ` +
          `${uploaded.size} results; p99 ${percentile(during, 99).toFixed(1)} ms during switches vs ` +
          `${percentile(baseline, 99).toFixed(1)} ms without (ratio ${(percentile(during, 99) / percentile(baseline, 99)).toFixed(2)})`,
      );
    },
  );
});
