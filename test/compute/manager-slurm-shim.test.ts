import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { activeManagedServices, completedOnce, sampler, startManager } from '../helpers/manager.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';
import { slurmShims } from '../helpers/slurm-shims.js';

const timings = { leaseTtlMs: 4_000, registrationTtlMs: 8_000, sweepIntervalMs: 500 };
const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];

describe('compute manager, Slurm driver against sbatch/squeue/scancel on PATH', () => {
  const dir = tempDir();

  it(
    'submits one job per service within max-services; a job cancelled mid-task loses no task',
    { timeout: 150_000 },
    async () => {
      const server = await startTestServer('sqlite', dir, timings);
      const { user, computeCredentials } = await queueClients(server, 'org-camp-*');
      const { tasks } = await networkWithTasks(user, {
        count: 12,
        protocol: 'sleep',
        inputs: () => ({ seconds: 1 }),
      });
      const shims = slurmShims();
      const template = path.join(dir, 'job.sbatch');
      writeFileSync(
        template,
        '#!/bin/bash\n{{options}}\n#SBATCH --comment=launch-{{launch}}\necho "job $SLURM_JOB_ID as {{job_name}}"\nexec {{command}}\n',
      );
      const services = sampler(() => activeManagedServices(server.store, 'hpc'));
      const manager = startManager(
        computeCredentials,
        [
          '--driver',
          'slurm',
          '--name',
          'hpc',
          '--max-services',
          '2',
          '--idle-timeout',
          '3s',
          '--interval',
          '1s',
          '--slurm-template',
          template,
          '--slurm-partition',
          'debug',
          '--slurm-time',
          '0:10:00',
          '--slurm-account',
          'chem',
        ],
        shims.env,
      );
      // Cancel a job while its service holds a task.
      await until(
        'the condition at line 63',
        async () => {
          const busy = await server.store.db
            .selectFrom('tasks')
            .select('id')
            .where('status', '=', 'running')
            .executeTakeFirst();
          return Boolean(busy);
        },
        60_000,
      );
      const jobId = readFileSync(path.join(shims.state, 'next'), 'utf8').trim();
      execFileSync('scancel', [jobId], { env: { ...process.env, ...shims.env } });

      await until(
        'the condition at line 74',
        async () => (await completedOnce(server.store, tasks)).complete === 12,
        120_000,
      );
      await until(
        'the condition at line 75',
        async () => (await activeManagedServices(server.store, 'hpc')) === 0,
        30_000,
      );
      await services.stop();
      expect(await completedOnce(server.store, tasks)).toEqual({ complete: 12, okOnce: 12, okTwice: 0 });
      expect(services.max).toBeLessThanOrEqual(2);
      // The cancelled service handled SIGTERM: it deregistered rather than expiring.
      const states = await server.store.db
        .selectFrom('compute_services')
        .select('state')
        .where('manager_id', 'is not', null)
        .execute();
      expect(states.every((s) => s.state === 'deregistered')).toBe(true);

      const submitted = lines(path.join(shims.state, 'sbatch.calls'));
      expect(submitted.length).toBeGreaterThanOrEqual(2);
      for (const argv of submitted)
        expect(argv).toMatch(/^--parsable --job-name=athanor-hpc-b-[0-9a-f]{12}$/);
      const script = readFileSync(path.join(shims.state, `${jobId}.sh`), 'utf8');
      expect(script).toContain('#SBATCH --partition=debug');
      expect(script).toContain('#SBATCH --time=0:10:00');
      expect(script).toContain('#SBATCH --account=chem');
      expect(script).toContain('#SBATCH --signal=B:TERM@120');
      expect(script).toMatch(/exec \S+ \S+main\.js compute run --name hpc\/[0-9a-f]+ --manager mgr-/);
      expect(script).toContain('--max-idle 1.5s');
      // The key travels in the job's environment, never in its script.
      expect(script).not.toContain(computeCredentials.key);
      expect(readFileSync(path.join(shims.state, `${jobId}.out`), 'utf8')).toMatch(
        /job \d+ as athanor-hpc-b-/,
      );
      manager.child.kill('SIGTERM');
      expect((await manager.done).code).toBe(0);
    },
  );

  it('backs off when sbatch keeps failing, says why, and never busy-loops', { timeout: 90_000 }, async () => {
    const server = await startTestServer('sqlite', dir, timings);
    const { user, computeCredentials } = await queueClients(server, 'org-camp-*');
    await networkWithTasks(user, { count: 5 });
    const shims = slurmShims();
    writeFileSync(
      path.join(shims.state, 'fail'),
      'Invalid account or account/partition combination specified',
    );
    const manager = startManager(
      computeCredentials,
      ['--driver', 'slurm', '--name', 'broken', '--max-services', '3', '--interval', '1s'],
      shims.env,
    );
    await until('the condition at line 122', () => /registered as/.test(manager.stderr()), 30_000);
    await new Promise((r) => setTimeout(r, 30_000));
    const sbatchCalls = lines(path.join(shims.state, 'sbatch.calls')).length;
    const squeueCalls = lines(path.join(shims.state, 'squeue.calls')).length;
    // Backoff of 5 s doubling: a handful of tries in 30 s, where a busy loop would make thousands.
    expect(sbatchCalls).toBeGreaterThanOrEqual(2);
    expect(sbatchCalls).toBeLessThanOrEqual(5);
    expect(squeueCalls).toBeLessThanOrEqual(35);
    const status = await runCli(['compute', 'manager', 'status', 'broken'], {
      env: { ATHANOR_DATABASE_URL: server.databaseUrl },
    });
    expect(status.stdout).toMatch(
      /backoff: driver refused: sbatch exit 1: sbatch: error: Batch job submission failed: Invalid account/,
    );
    expect(status.stdout).toMatch(/in a row; next try in \d+ s/);
    manager.child.kill('SIGTERM');
    expect((await manager.done).code).toBe(0);
  });
});
