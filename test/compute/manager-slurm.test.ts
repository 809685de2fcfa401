import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { until } from '../helpers/until.js';
import { completedOnce, sampler, startManager } from '../helpers/manager.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';
import type { SlurmCluster } from '../helpers/slurm-cluster.js';
import { slurmMissing, startSlurmCluster } from '../helpers/slurm-cluster.js';

const missing = slurmMissing();
if (missing && process.env.CI === 'true')
  throw new Error(`the Slurm tests need a real Slurm under CI: ${missing}`);
if (missing) console.warn(`SKIPPING the real Slurm tests: ${missing}`);

const timings = { leaseTtlMs: 4_000, registrationTtlMs: 8_000, sweepIntervalMs: 500 };
const idleTimeoutS = 4;

describe.runIf(!missing)(
  'compute manager on a real single-node Slurm (slurmctld, slurmd, munge; no slurmdbd)',
  () => {
    const dir = tempDir();
    let cluster: SlurmCluster;
    beforeAll(async () => {
      cluster = await startSlurmCluster();
    }, 90_000);
    afterAll(() => cluster?.stop());

    const jobs = () => {
      const out = spawnSync('squeue', ['-h', '-o', '%i %j %T'], {
        env: { ...process.env, ...cluster.env },
        encoding: 'utf8',
      });
      return out.stdout.split('\n').filter((l) => l.includes('athanor-'));
    };

    it(
      '40 tasks, max 3 jobs at once, each task once, a job cancelled mid-task loses nothing, no job left after the drain',
      { timeout: 240_000 },
      async () => {
        const server = await startTestServer('sqlite', dir, timings);
        const { user, computeCredentials } = await queueClients(server, 'org-camp-*');
        const { tasks } = await networkWithTasks(user, {
          count: 40,
          protocol: 'sleep',
          inputs: () => ({ seconds: 0.5 }),
        });
        const inQueue = sampler(() => jobs().length);
        const manager = startManager(
          computeCredentials,
          [
            '--driver',
            'slurm',
            '--name',
            'cluster',
            '--max-services',
            '3',
            '--idle-timeout',
            `${idleTimeoutS}s`,
            '--interval',
            '1s',
            '--slurm-partition',
            'debug',
            '--slurm-time',
            '0:30:00',
            '--slurm-output',
            `${dir}/slurm-%j.out`,
          ],
          cluster.env,
        );
        // scancel one job while its service holds a task.
        await until(
          'the condition at line 72',
          async () => {
            const running = await server.store.db
              .selectFrom('tasks')
              .select('id')
              .where('status', '=', 'running')
              .executeTakeFirst();
            return Boolean(running) && jobs().some((j) => j.endsWith('RUNNING'));
          },
          120_000,
        );
        const victim = jobs()
          .find((j) => j.endsWith('RUNNING'))!
          .split(' ')[0]!;
        expect(spawnSync('scancel', [victim], { env: { ...process.env, ...cluster.env } }).status).toBe(0);

        await until(
          'the condition at line 85',
          async () => (await completedOnce(server.store, tasks)).complete === 40,
          180_000,
        );
        const drainedAt = Date.now();
        await until('the condition at line 87', () => jobs().length === 0, 60_000);
        const goneAfterMs = Date.now() - drainedAt;
        await inQueue.stop();
        expect(await completedOnce(server.store, tasks)).toEqual({ complete: 40, okOnce: 40, okTwice: 0 });
        expect(inQueue.max).toBeLessThanOrEqual(3);
        expect(inQueue.max).toBeGreaterThanOrEqual(1);
        expect(goneAfterMs).toBeLessThan((idleTimeoutS + 10) * 1000);
        manager.child.kill('SIGTERM');
        expect((await manager.done).code).toBe(0);
      },
    );
  },
);
