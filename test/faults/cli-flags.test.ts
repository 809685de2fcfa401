import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';
import { startAthanor } from './processes.js';
import { until } from '../helpers/until.js';

const badValues = ['abc', '-5', '1.5', '99999999999999999999', 'org-*-p x'];

/** Every flag of every command whose parser checks its value, with the first value it refuses. */
async function validatedFlags(): Promise<{ path: string[]; flag: string; value: string }[]> {
  const cases: { path: string[]; flag: string; value: string }[] = [];
  const walk = (command: Command, path: string[]) => {
    for (const sub of command.commands) walk(sub, [...path, sub.name()]);
    if (command.commands.length > 0) return;
    for (const option of command.options as Option[]) {
      if (!option.long || (!option.required && !option.optional)) continue;
      for (const value of badValues) {
        let refused = false;
        if (option.argChoices) refused = !option.argChoices.includes(value);
        else if (option.parseArg) {
          try {
            option.parseArg(value, undefined);
          } catch {
            refused = true;
          }
        }
        if (refused) {
          cases.push({ path, flag: option.long, value });
          break;
        }
      }
    }
  };
  walk(await buildProgram(), []);
  return cases;
}

describe('every command ends', () => {
  const dir = tempDir();
  const env = { ATHANOR_DATA_DIR: dir, ATHANOR_DATABASE_URL: `sqlite:${dir}/athanor.db` };

  it(
    'each refused flag value exits 2 with a message naming the flag, before anything is written',
    { timeout: 300_000 },
    async () => {
      const cases = await validatedFlags();
      // integer, port, concurrency, scope and choice flags across the command tree
      expect(cases.length).toBeGreaterThan(15);
      const failures: string[] = [];
      for (let i = 0; i < cases.length; i += 4) {
        await Promise.all(
          cases.slice(i, i + 4).map(async ({ path, flag, value }) => {
            const result = await runCli([...path, `${flag}=${value}`], { env });
            if (result.code !== 2 || !result.stderr.includes(flag))
              failures.push(
                `${path.join(' ')} ${flag}=${value}: exit ${result.code}, ${result.stderr.trim()}`,
              );
          }),
        );
      }
      expect(failures).toEqual([]);
      // Nothing was created: not even the database of a command that would have opened it.
      expect((await runCli(['database', 'status'], { env })).stderr).toContain('database init');
    },
  );

  it('up --port 99999 and ATHANOR_PORT=99999 up both end with an error instead of hanging', async () => {
    const flag = await runCli(['up', '--port', '99999'], { env });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("--port takes a whole number from 0 to 65535, got '99999'");
    const fromEnv = await runCli(['up'], { env: { ...env, ATHANOR_PORT: '99999' } });
    expect(fromEnv.code).not.toBe(0);
    expect(fromEnv.stderr).toContain('99999');
  });

  it('backup create to a target that cannot be created fails, naming the target', async () => {
    await runCli(['database', 'init'], { env });
    const result = await runCli(['backup', 'create', '--target', 'file:/proc/athanor-nope'], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('file:/proc/athanor-nope');
  });

  it('compute run with a bad scope registers nothing; a busy service adds no abort listeners per wait', async () => {
    const server = await startTestServer('sqlite', dir);
    const { user, computeCredentials } = await queueClients(server);
    const computeEnv = {
      ATHANOR_URL: computeCredentials.url,
      ATHANOR_COMPUTE_ID: computeCredentials.identifier,
      ATHANOR_COMPUTE_KEY: computeCredentials.key,
    };
    const bad = await runCli(['compute', 'run', '-s', 'bad'], { env: computeEnv });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--scope 'bad'");
    expect(await server.store.db.selectFrom('compute_services').selectAll().execute()).toEqual([]);

    // One slot and instant tasks: dozens of waits per second, each of which used to leave a
    // listener on the service's stop signal for a second (Node warns past 10).
    const { network } = await networkWithTasks(user, { count: 40 });
    const run = startAthanor(['compute', 'run', '-c', '1'], computeEnv);
    await until(
      'the tasks to complete',
      async () => (await user.networkStatus(network)).complete === 40,
      60_000,
    );
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.log()).not.toContain('MaxListenersExceededWarning');
  });
});
