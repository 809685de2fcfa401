import path from 'node:path';
import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { startComputeRun } from '../helpers/compute-run.js';
import { until } from '../helpers/until.js';
import { queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const fixtures = path.resolve(import.meta.dirname, 'fixtures');

describeEachBackend('strategies', (backend) => {
  const dir = tempDir();

  it('repeat-until ends with exactly N successful results per transformation under 8 compute processes', async () => {
    const server = await startTestServer(backend, dir, { eventsIntervalMs: 50, strategyDeadlineMs: 5000 });
    const { user, userCredentials, computeCredentials } = await queueClients(server, 'org-camp-*');
    const n = 3;
    const network = await user.submitNetwork({
      scope: 'org-camp-p',
      name: 'repeat',
      transformations: Array.from({ length: 6 }, (_, i) => ({
        name: `t${i}`,
        protocol: 'flaky',
        inputs: { i },
      })),
    });
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const set = await runCli(['strategy', 'set', network.key, 'repeat-until', '--params', `{"n": ${n}}`], {
      env,
    });
    expect(set.code, set.stderr).toBe(0);
    const workers = Array.from({ length: 8 }, () =>
      startComputeRun(computeCredentials, [
        '--protocols',
        path.join(fixtures, 'flaky-protocols.mjs'),
        '--concurrency',
        '2',
      ]),
    );
    const completeCounts = async () => {
      const tasks = await server.store.db
        .selectFrom('tasks')
        .select(['transformation_key', 'status'])
        .where('transformation_key', 'in', network.transformations)
        .execute();
      const counts = new Map<string, Record<string, number>>();
      for (const t of tasks) {
        const c = counts.get(t.transformation_key) ?? {};
        c[t.status] = (c[t.status] ?? 0) + 1;
        counts.set(t.transformation_key, c);
      }
      return counts;
    };
    await until(
      'the expected state',
      async () => {
        const counts = await completeCounts();
        return network.transformations.every((k) => (counts.get(k)?.complete ?? 0) >= n);
      },
      120_000,
    );
    // Nothing more happens once every transformation has its N: no task left to run, none extra.
    await new Promise((r) => setTimeout(r, 1000));
    const counts = await completeCounts();
    for (const key of network.transformations) {
      expect(counts.get(key)?.complete, key).toBe(n);
      expect(counts.get(key)?.waiting ?? 0).toBe(0);
      expect(counts.get(key)?.running ?? 0).toBe(0);
    }
    const failures = [...counts.values()].reduce((sum, c) => sum + (c.error ?? 0), 0);
    const results = await server.store.db
      .selectFrom('results')
      .innerJoin('tasks', 'tasks.id', 'results.task_id')
      .select(['tasks.transformation_key'])
      .where('results.outcome', '=', 'ok')
      .where('tasks.transformation_key', 'in', network.transformations)
      .execute();
    expect(results).toHaveLength(n * network.transformations.length);
    const audit = await server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('actor', '=', 'strategy:repeat-until')
      .execute();
    expect(audit.length).toBeGreaterThanOrEqual(network.transformations.length);
    expect(audit.every((a) => a.target === network.key && a.action === 'strategy.ensure_tasks')).toBe(true);
    expect(
      audit.some((a) => JSON.parse(a.details ?? '{}').owner === `user:${userCredentials.identifier}`),
    ).toBe(true);
    // Failures happened and were replaced (the flaky protocol fails about one attempt in three).
    expect(failures).toBeGreaterThan(0);
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
  }, 180_000);

  it('stops a strategy that throws or never decides, recording the error and leaving the network as it was', async () => {
    const server = await startTestServer(backend, dir, {
      eventsIntervalMs: 50,
      strategyDeadlineMs: 500,
      strategyModules: [path.join(fixtures, 'broken-strategies.mjs')],
    });
    const { user } = await queueClients(server, 'org-camp-*');
    for (const [name, message] of [
      ['throws', 'this strategy has no idea'],
      ['never-decides', 'did not decide within 500 ms'],
    ] as const) {
      const network = await user.submitNetwork({
        scope: 'org-camp-p',
        name,
        transformations: [{ name: 'a', protocol: 'echo', inputs: {} }],
      });
      await user.createTasks(network.transformations[0]!, { count: 2 });
      const before = await server.store.db.selectFrom('tasks').selectAll().orderBy('id').execute();
      await user.setStrategy(network.key, name, {});
      await until(
        'the expected state',
        async () => (await user.getStrategy(network.key)).state === 'stopped',
        30_000,
      );
      const strategy = await user.getStrategy(network.key);
      expect(strategy.lastError).toContain(message);
      expect(await server.store.db.selectFrom('tasks').selectAll().orderBy('id').execute()).toEqual(before);
      // Its strategy.failed event is numbered by the next sequencer round.
      await until(
        'the expected state',
        async () => (await user.events({ type: 'strategy.failed', network: network.key })).events.length > 0,
        30_000,
      );
      const failed = await user.events({ type: 'strategy.failed', network: network.key });
      expect(failed.events).toHaveLength(1);
      const audit = await server.store.db
        .selectFrom('audit_log')
        .selectAll()
        .where('target', '=', network.key)
        .where('action', '=', 'strategy.stop')
        .execute();
      expect(audit).toMatchObject([{ actor: `strategy:${name}`, outcome: 'error' }]);
    }
  });

  it('previews without acting, and fewest-results-first reorders waiting tasks', async () => {
    const server = await startTestServer(backend, dir, { eventsIntervalMs: 50 });
    const { user, compute, userCredentials } = await queueClients(server, 'org-camp-*');
    const network = await user.submitNetwork({
      scope: 'org-camp-p',
      name: 'fewest',
      transformations: Array.from({ length: 3 }, (_, i) => ({
        name: `t${i}`,
        protocol: 'echo',
        inputs: { i },
      })),
    });
    const [t0, t1, t2] = network.transformations as [string, string, string];
    // t0 gets two results, t1 one, t2 none; then each has two waiting tasks on the hub.
    const { id: service } = await compute.register('c');
    for (const [key, done] of [
      [t0, 2],
      [t1, 1],
    ] as const) {
      for (let i = 0; i < done; i++) {
        const [task] = await user.createTasks(key, {});
        await user.actionTasks(network.key, [task!.id]);
        const [claim] = await compute.claim(service, { count: 1 });
        await compute.submitResult(claim!.task, claim!.leaseToken, 'ok', Buffer.from('{}'));
      }
    }
    const waiting = new Map<string, string[]>();
    for (const key of [t0, t1, t2]) {
      const tasks = await user.createTasks(key, { count: 2, priority: 5 });
      await user.actionTasks(
        network.key,
        tasks.map((t) => t.id),
      );
      waiting.set(
        key,
        tasks.map((t) => t.id),
      );
    }
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const previewRun = await runCli(['strategy', 'preview', network.key], { env });
    expect(previewRun.code).toBe(1);
    expect(previewRun.stderr).toContain('names no strategy');

    // A strategy set and stopped by hand is not run; a preview of one shows, does nothing.
    await server.store.db
      .insertInto('network_strategies')
      .values({
        network_key: network.key,
        name: 'repeat-until',
        params: '{"n":4}',
        state: 'stopped',
        last_error: null,
        last_run_at: null,
        runs: 0,
        created_by: `user:${userCredentials.identifier}`,
        updated_at: new Date().toISOString(),
      })
      .execute();
    const tasksBefore = (await server.store.db.selectFrom('tasks').select('id').execute()).length;
    const preview = await runCli(['strategy', 'preview', network.key, '--json'], { env });
    expect(preview.code, preview.stderr).toBe(0);
    const actions = (JSON.parse(preview.stdout) as { actions: { kind: string; transformation: string }[] })
      .actions;
    expect(actions.map((a) => a.transformation).sort()).toEqual([t1, t2].sort());
    expect((await server.store.db.selectFrom('tasks').select('id').execute()).length).toBe(tasksBefore);

    await user.setStrategy(network.key, 'fewest-results-first', { levels: 3 });
    const priorityOf = async (key: string) =>
      (
        await server.store.db
          .selectFrom('tasks')
          .select('priority')
          .where('id', 'in', waiting.get(key)!)
          .execute()
      ).map((r) => r.priority);
    await until(
      'the expected state',
      async () =>
        (await priorityOf(t0)).every((p) => p === 3) && (await priorityOf(t2)).every((p) => p === 1),
      30_000,
    );
    expect(await priorityOf(t1)).toEqual([2, 2]);
    expect(await priorityOf(t0)).toEqual([3, 3]);
    const audit = await server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('actor', '=', 'strategy:fewest-results-first')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      'strategy.set_priority',
      'strategy.set_priority',
      'strategy.set_priority',
    ]);
  });

  it('ensures N tasks exactly once under concurrent calls', async () => {
    const server = await startTestServer(backend, dir, { eventsIntervalMs: 50 });
    const { user, userCredentials } = await queueClients(server, 'org-camp-*');
    const network = await user.submitNetwork({
      scope: 'org-camp-p',
      name: 'ensure',
      transformations: [{ name: 'a', protocol: 'echo', inputs: {} }],
    });
    const key = network.transformations[0]!;
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => user.ensureTasks(key, { count: 5, network: network.key })),
    );
    expect(answers.reduce((sum, a) => sum + a.created.length, 0)).toBe(5);
    const tasks = await server.store.db
      .selectFrom('tasks')
      .select('id')
      .where('transformation_key', '=', key)
      .execute();
    expect(tasks).toHaveLength(5);
    expect(await user.networkTasks(network.key)).toHaveLength(5);
    const env = {
      ATHANOR_URL: server.url,
      ATHANOR_ID: userCredentials.identifier,
      ATHANOR_KEY: userCredentials.key,
    };
    const cli = await runCli(['task', 'ensure', key, '--count', '7', '--network', network.key, '--json'], {
      env,
    });
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ existing: 5 });
    expect((JSON.parse(cli.stdout) as { created: string[] }).created).toHaveLength(2);
    const again = await runCli(['task', 'ensure', key, '--count', '7', '--network', network.key], { env });
    expect(again.stdout.trim()).toBe('');
    expect(again.stderr).toContain('7 existed, 0 created');
  });
});

it('lists the built-in strategies', async () => {
  const dir = tempDir();
  const server = await startTestServer('sqlite', dir, { eventsIntervalMs: 0 });
  const { user } = await queueClients(server, 'org-camp-*');
  expect((await user.listStrategies()).map((s) => s.name)).toEqual(['repeat-until', 'fewest-results-first']);
});
