import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import type { Store } from '../../src/store/open-store.js';
import type { CliProcess } from './cli.js';
import { startCli } from './cli.js';

/** An `athanor compute manager run` child process; SIGKILLed when the file ends if still running. */
export function startManager(
  credentials: { url: string; identifier: string; key: string },
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): CliProcess {
  const manager = startCli(['compute', 'manager', 'run', ...args], {
    env: {
      ATHANOR_URL: credentials.url,
      ATHANOR_COMPUTE_ID: credentials.identifier,
      ATHANOR_COMPUTE_KEY: credentials.key,
      ...env,
    },
  });
  afterAll(() => {
    if (manager.child.exitCode === null && manager.child.signalCode === null) manager.child.kill('SIGKILL');
  });
  return manager;
}

/** Active compute services the server has for the manager named `name`. */
export async function activeManagedServices(store: Store, name: string): Promise<number> {
  const row = await store.db
    .selectFrom('compute_services as s')
    .innerJoin('compute_managers as m', 'm.id', 's.manager_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('m.name', '=', name)
    .where('s.state', '=', 'active')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Samples `count()` every 100 ms until stopped; `max` is the most seen at once. */
export function sampler(count: () => Promise<number> | number) {
  let max = 0;
  let last = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      last = await count();
      max = Math.max(max, last);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    get max() {
      return max;
    },
    get last() {
      return last;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Live processes of the local driver's launches under `stateDir` (pid files whose pid runs). */
export function localLaunchProcesses(stateDir: string): number {
  let count = 0;
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const full = path.join(dir, name);
      if (!name.endsWith('.json')) {
        if (!name.includes('.')) walk(full);
        continue;
      }
      try {
        const { pid } = JSON.parse(readFileSync(full, 'utf8')) as { pid: number };
        process.kill(pid, 0);
        count++;
      } catch {
        // gone
      }
    }
  };
  walk(stateDir);
  return count;
}

/** Every task of the store completed exactly once: one ok attempt and one result each. */
export async function completedOnce(store: Store, taskIds: readonly string[]) {
  const tasks = await store.db
    .selectFrom('tasks')
    .select(['id', 'status'])
    .where('id', 'in', [...taskIds])
    .execute();
  const ok = await store.db
    .selectFrom('task_attempts')
    .select(['task_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('outcome', '=', 'ok')
    .where('task_id', 'in', [...taskIds])
    .groupBy('task_id')
    .execute();
  return {
    complete: tasks.filter((t) => t.status === 'complete').length,
    okOnce: ok.filter((r) => Number(r.n) === 1).length,
    okTwice: ok.filter((r) => Number(r.n) > 1).length,
  };
}
