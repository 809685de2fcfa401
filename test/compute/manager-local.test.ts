import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import {
  activeManagedServices,
  completedOnce,
  localLaunchProcesses,
  sampler,
  startManager,
} from '../helpers/manager.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

// Short leases and timeouts keep the whole file around a minute on a loaded two-core machine.
const timings = { leaseTtlMs: 4_000, registrationTtlMs: 8_000, sweepIntervalMs: 500 };
const idleTimeoutS = 3;

describe('compute manager, local driver', () => {
  const dir = tempDir();

  it(
    'runs at most max-services, completes every task once, survives SIGKILL without doubling, leaves nothing after the drain',
    { timeout: 180_000 },
    async () => {
      const server = await startTestServer('sqlite', dir, timings);
      const { user, computeCredentials } = await queueClients(server, 'org-camp-*');
      const { tasks } = await networkWithTasks(user, {
        scope: 'org-camp-p',
        count: 40,
        protocol: 'sleep',
        inputs: () => ({ seconds: 0.4 }),
      });
      const stateDir = path.join(dir, 'managers-1');
      const args = [
        '--driver',
        'local',
        '--name',
        'one',
        '--max-services',
        '3',
        '--idle-timeout',
        `${idleTimeoutS}s`,
        '--interval',
        '1s',
      ];
      const env = { ATHANOR_MANAGER_STATE_DIR: stateDir };
      const onServer = sampler(() => activeManagedServices(server.store, 'one'));
      const processes = sampler(() => localLaunchProcesses(stateDir));
      let manager = startManager(computeCredentials, args, env);
      await until('the condition at line 53', () => onServer.last >= 3, 60_000);

      // Killed outright and started again under its name: it finds its services, starts no more.
      manager.child.kill('SIGKILL');
      await manager.done;
      manager = startManager(computeCredentials, args, env);
      await until('the condition at line 59', () => /resumed as mgr-/.test(manager.stderr()), 30_000);

      await until(
        'the condition at line 61',
        async () => (await completedOnce(server.store, tasks)).complete === 40,
        120_000,
      );
      const drainedAt = Date.now();
      await until(
        'the condition at line 63',
        async () =>
          (await activeManagedServices(server.store, 'one')) === 0 && localLaunchProcesses(stateDir) === 0,
        30_000,
      );
      const goneAfterMs = Date.now() - drainedAt;
      await onServer.stop();
      await processes.stop();

      expect(await completedOnce(server.store, tasks)).toEqual({ complete: 40, okOnce: 40, okTwice: 0 });
      expect(onServer.max).toBeLessThanOrEqual(3);
      expect(processes.max).toBeLessThanOrEqual(3);
      expect(processes.max).toBeGreaterThanOrEqual(2);
      // Gone within the idle timeout after the drain (plus a cycle and a heartbeat's worth of slack).
      expect(goneAfterMs).toBeLessThan((idleTimeoutS + 6) * 1000);

      const status = await runCli(['compute', 'manager', 'status', 'one', '--json'], {
        env: { ATHANOR_DATABASE_URL: server.databaseUrl },
      });
      expect(status.code).toBe(0);
      const view = JSON.parse(status.stdout) as {
        decisions: { action: string; reason: string }[];
        state: string;
      };
      expect(view.state).toBe('active');
      expect(view.decisions.some((d) => d.action === 'start' && /waiting task/.test(d.reason))).toBe(true);
      await until(
        'the condition at line 89',
        async () => {
          const again = await runCli(['compute', 'manager', 'status', 'one', '--json'], {
            env: { ATHANOR_DATABASE_URL: server.databaseUrl },
          });
          return /no claimable work in your scopes/.test(again.stdout);
        },
        20_000,
      );

      // Stopped by an operator: the manager drains what runs and exits 0.
      const stop = await runCli(['compute', 'manager', 'stop', 'one'], {
        env: { ATHANOR_DATABASE_URL: server.databaseUrl },
      });
      expect(stop.code).toBe(0);
      expect((await manager.done).code).toBe(0);
      const audit = await server.store.db
        .selectFrom('audit_log')
        .select('action')
        .where('target', '=', 'one')
        .execute();
      expect(audit.map((a) => a.action)).toEqual(
        expect.arrayContaining(['compute.manager.start', 'compute.manager.stop-requested']),
      );
    },
  );

  it('two managers with disjoint scopes each serve only theirs', { timeout: 120_000 }, async () => {
    const server = await startTestServer('sqlite', dir, timings);
    const { user, computeCredentials } = await queueClients(server, 'org-camp-*');
    const a = await networkWithTasks(user, {
      scope: 'org-camp-a',
      name: 'a',
      count: 4,
      protocol: 'sleep',
      inputs: () => ({ seconds: 0.2 }),
    });
    const b = await networkWithTasks(user, {
      scope: 'org-camp-b',
      name: 'b',
      count: 4,
      protocol: 'sleep',
      inputs: () => ({ seconds: 0.2 }),
    });
    const env = { ATHANOR_MANAGER_STATE_DIR: path.join(dir, 'managers-2') };
    const common = ['--driver', 'local', '--max-services', '2', '--idle-timeout', '2s', '--interval', '1s'];
    const ma = startManager(computeCredentials, [...common, '--name', 'ma', '--scope', 'org-camp-a'], env);
    const mb = startManager(computeCredentials, [...common, '--name', 'mb', '--scope', 'org-camp-b'], env);
    await until(
      'the condition at line 134',
      async () => (await completedOnce(server.store, [...a.tasks, ...b.tasks])).complete === 8,
      90_000,
    );
    const attempts = await server.store.db
      .selectFrom('task_attempts as at')
      .innerJoin('compute_services as s', 's.id', 'at.compute_service_id')
      .innerJoin('compute_managers as m', 'm.id', 's.manager_id')
      .select(['at.scope', 'm.name'])
      .execute();
    expect(attempts.length).toBeGreaterThanOrEqual(8);
    for (const attempt of attempts) expect(attempt.name).toBe(attempt.scope === 'org-camp-a' ? 'ma' : 'mb');
    ma.child.kill('SIGTERM');
    mb.child.kill('SIGTERM');
    expect((await ma.done).code).toBe(0);
    expect((await mb.done).code).toBe(0);
  });

  it('refuses bad input with exit 2 naming the flag or file', async () => {
    const creds = { ATHANOR_COMPUTE_ID: 'c', ATHANOR_COMPUTE_KEY: 'k' };
    const run = (args: string[], env: Record<string, string> = {}) =>
      runCli(['compute', 'manager', 'run', ...args], { env: { ...creds, ...env } });
    const unknown = await run(['--driver', 'pbs']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--driver.*'pbs' is invalid.*local, slurm, kubernetes/);
    const zero = await run(['--driver', 'local', '--max-services', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--max-services takes a whole number from 1/);
    const above = await run(['--driver', 'local', '--max-services', '2', '--min-services', '3']);
    expect(above.code).toBe(2);
    expect(above.stderr).toMatch(/--min-services 3 is above --max-services 2/);
    const noSbatch = await run(['--driver', 'slurm'], { PATH: tempDir('athanor-empty-path-') });
    expect(noSbatch.code).toBe(2);
    expect(noSbatch.stderr).toMatch(/--driver slurm needs sbatch on PATH/);
    const bin = tempDir('athanor-bin-');
    for (const tool of ['sbatch', 'squeue', 'scancel'])
      writeFileSync(path.join(bin, tool), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const template = path.join(dir, 'bad.sbatch');
    writeFileSync(template, '#!/bin/bash\n{{options}}\nexec {{comand}}\n');
    const bad = await run(['--driver', 'slurm', '--slurm-template', template], {
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`--slurm-template ${template}: unknown placeholder {{comand}}`);
    const manifest = path.join(dir, 'bad.yaml');
    writeFileSync(manifest, 'kind: Deployment\nspec: [unclosed\n');
    const badManifest = await run(['--driver', 'kubernetes', '--kube-manifest', manifest]);
    expect(badManifest.code).toBe(2);
    expect(badManifest.stderr).toContain(`--kube-manifest ${manifest} does not parse`);
  });
});
