import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const claimerScript = path.resolve(import.meta.dirname, 'fixtures/claimer.mjs');
// The size: 20,000 tasks. About a minute on SQLite and two or three on PostgreSQL on two
// cores; `npm run bench` measures throughput side by side with graphile-worker and pg-boss.
const taskCount = 20_000;
const claimers = 32;

function runClaimer(args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [claimerScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`claimer exited ${code}: ${err}`));
      else resolve((JSON.parse(out) as { completed: string[] }).completed);
    });
  });
}

describeEachBackend('draining the queue', (backend) => {
  const dir = tempDir();

  it(
    `${claimers} claimer processes drain ${taskCount} tasks over HTTP, each claimed and completed exactly once`,
    { timeout: 600_000 },
    async () => {
      // The claimer processes never heartbeat their registration: it must outlast the drain,
      // however slow a loaded machine makes it.
      const server = await startTestServer(backend, dir, { registrationTtlMs: 3_600_000 });
      const { user, computeCredentials } = await queueClients(server);
      const transformations = 200;
      const network = await user.submitNetwork({
        scope: 'org-camp-p',
        name: 'drain',
        transformations: Array.from({ length: transformations }, (_, i) => ({
          name: `t${i}`,
          protocol: 'echo',
          inputs: { i },
        })),
      });
      const taskIds: string[] = [];
      for (const tf of network.transformations) {
        taskIds.push(
          ...(await user.createTasks(tf, { count: taskCount / transformations })).map((t) => t.id),
        );
      }
      for (let i = 0; i < taskIds.length; i += 5000)
        await user.actionTasks(network.key, taskIds.slice(i, i + 5000));

      const runs = await Promise.all(
        Array.from({ length: claimers }, () =>
          runClaimer([computeCredentials.url, computeCredentials.identifier, computeCredentials.key]),
        ),
      );
      const completed = runs.flat();
      expect(completed).toHaveLength(taskCount);
      expect(new Set(completed).size).toBe(taskCount);
      const results = await server.store.db
        .selectFrom('results')
        .select(['task_id', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('task_id')
        .having((eb) => eb.fn.countAll(), '>', 1)
        .execute();
      expect(results).toEqual([]);
      expect(await user.networkStatus(network.key)).toEqual({ complete: taskCount });
      // The history adds up: one closed attempt per claim, one ok attempt per task, each naming
      // the result that ended it.
      const db = server.store.db;
      const claims = await db
        .selectFrom('tasks')
        .select((eb) => eb.fn.sum<number>('lease_token').as('n'))
        .executeTakeFirstOrThrow();
      const byOutcome = await db
        .selectFrom('task_attempts')
        .select(['outcome', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('outcome')
        .execute();
      const counts = Object.fromEntries(byOutcome.map((r) => [r.outcome ?? 'open', Number(r.n)]));
      expect(counts.ok).toBe(taskCount);
      expect(counts.open).toBeUndefined();
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(Number(claims.n));
      const unmatched = await db
        .selectFrom('task_attempts as a')
        .leftJoin('results as r', 'r.id', 'a.result_id')
        .select('a.task_id')
        .where('a.outcome', '=', 'ok')
        .where((eb) => eb.or([eb('r.id', 'is', null), eb('r.task_id', '!=', eb.ref('a.task_id'))]))
        .execute();
      expect(unmatched).toEqual([]);
    },
  );
});
