import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/store/backend.js';
import { backendNames, freshDatabaseUrl, postgresAdminUrl, tempDir } from '../helpers/backends.js';
import { cliPath, runCli } from '../helpers/cli.js';
import { startComputeRun } from '../helpers/compute-run.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { findPython, pythonPackageDir, pythonVenv, run } from '../helpers/python-venv.js';
import type { ServeProcess } from '../helpers/serve-process.js';
import { startServeProcess } from '../helpers/serve-process.js';

const found = findPython();
if ('unavailable' in found) {
  if (process.env.CI === 'true') {
    throw new Error(`the Python client cannot be tested: ${found.unavailable}. CI must test it.`);
  }
  const banner = '!'.repeat(78);
  process.stderr.write(
    `\n${banner}\n!! SKIPPING the Python client's tests: ${found.unavailable}.\n` +
      `!! Install python3 with venv support to run them; under CI=true this is a failure.\n${banner}\n\n`,
  );
}

const identities = [
  { kind: 'user', id: 'alice', scope: 'org-camp-*' },
  { kind: 'user', id: 'bob', scope: 'other-x-*' },
  { kind: 'compute', id: 'worker', scope: 'org-camp-*' },
] as const;
const keyOf = (id: string) => `${id}-key-0123456789abcdef`;

/** A real `athanor serve` on a fresh database, its identities seeded with the CLI, and a compute service. */
async function startPlatform(backend: BackendName, dir: string) {
  const databaseUrl = await freshDatabaseUrl(backend, dir);
  const env = { ATHANOR_DATABASE_URL: databaseUrl, ATHANOR_DATA_DIR: path.join(dir, backend) };
  const cli = async (args: string[]) => {
    const done = await runCli(args, { env });
    if (done.code !== 0) throw new Error(`athanor ${args.join(' ')}: ${done.stderr}`);
  };
  await cli(['database', 'init']);
  for (const identity of identities) {
    await cli(['identity', 'add', '-t', identity.kind, '-i', identity.id, '-k', keyOf(identity.id)]);
    await cli(['identity', 'add-scope', '-t', identity.kind, '-i', identity.id, '-s', identity.scope]);
  }
  const server = await startServeProcess(await freePort(), env);
  const compute = startComputeRun({ url: server.url, identifier: 'worker', key: keyOf('worker') }, [
    '--allow-exec',
    '--concurrency',
    '4',
  ]);
  return { server, compute, env, databaseUrl };
}

describe.runIf(!('unavailable' in found))('the Python client against a live server', () => {
  const dir = tempDir('athanor-python-');
  const servers: ServeProcess[] = [];
  let python = '';

  beforeAll(async () => {
    python = await pythonVenv((found as { python: string }).python);
  }, 900_000);

  afterAll(() => {
    for (const server of servers) server.child.kill('SIGTERM');
  });

  const backends = backendNames.filter((b) => b === 'sqlite' || postgresAdminUrl() !== '');

  it(
    `passes pytest (every verb, scope isolation, resumed download, 503 retried, drift, README) on ${backends.join(' and ')}`,
    { timeout: 600_000 },
    async () => {
      // Both backends at once: each run waits on its server and compute service, not on CPU.
      const runs = await Promise.all(
        backends.map(async (backend) => {
          const platform = await startPlatform(backend, dir);
          servers.push(platform.server);
          const result = await run(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--color=no'], {
            cwd: pythonPackageDir,
            env: {
              ATHANOR_URL: platform.server.url,
              ATHANOR_ID: 'alice',
              ATHANOR_KEY: keyOf('alice'),
              ATHANOR_KEY_FILE: undefined,
              ATHANOR_TEST_OTHER_ID: 'bob',
              ATHANOR_TEST_OTHER_KEY: keyOf('bob'),
              ATHANOR_TEST_CLI: JSON.stringify([process.execPath, cliPath]),
              ATHANOR_TEST_DATABASE_URL: platform.databaseUrl,
              ATHANOR_DATA_DIR: platform.env.ATHANOR_DATA_DIR,
              XDG_CACHE_HOME: path.join(dir, `cache-${backend}`),
              PYTHONDONTWRITEBYTECODE: '1',
            },
          });
          platform.server.child.kill('SIGTERM');
          platform.compute.child.kill('SIGTERM');
          return { backend, ...result, serverLog: platform.server.log(), computeLog: platform.compute.log() };
        }),
      );
      for (const r of runs) {
        const detail =
          `pytest on ${r.backend} exited ${r.code}:\n${r.output}` +
          (r.code === 0 ? '' : `\n--- server log ---\n${r.serverLog}\n--- compute log ---\n${r.computeLog}`);
        expect(r.code, detail).toBe(0);
        // Every test ran: none was skipped or left out.
        expect(r.output, detail).toMatch(/\b\d+ passed\b/);
        expect(r.output, detail).not.toMatch(/skipped|deselected|xfail/);
      }
    },
  );
});
