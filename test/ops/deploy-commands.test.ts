import { migrations } from '../../src/store/migrations/index.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/postgres-cluster.js';
import type { ServeProcess } from '../helpers/serve-process.js';
import { startServeProcess } from '../helpers/serve-process.js';
import { freshStore } from '../helpers/store.js';

interface LogEntry {
  actor: string;
  action: string;
  target: string;
  outcome: string;
  details: { code?: string; from?: string; to?: string; toVersion?: string };
}

describeEachBackend('athanor deploy', (backend) => {
  const dir = tempDir();

  it(
    'refuses a colour that is down, a failing proxy check and a rollback across a breaking migration, and logs each',
    { timeout: 180_000 },
    async () => {
      const { store, url: databaseUrl } = await freshStore(backend, dir);
      const ports = { blue: await freePort(), green: await freePort() };
      const serveEnv = {
        ATHANOR_DATABASE_URL: databaseUrl,
        ATHANOR_DATA_DIR: path.join(dir, 'data'),
        ATHANOR_SHUTDOWN_DELAY_MS: '0',
      };
      const running: ServeProcess[] = [];
      onTestFinished(() => running.forEach((s) => s.child.kill('SIGKILL')));
      running.push(await startServeProcess(ports.green, serveEnv));
      const upstreamFile = path.join(dir, 'athanor-upstream.conf');
      const deploy = (args: string[], env: Record<string, string> = {}) =>
        runCli(['deploy', ...args], {
          env: {
            ATHANOR_DATABASE_URL: databaseUrl,
            ATHANOR_DEPLOY_BLUE_URL: `http://127.0.0.1:${ports.blue}`,
            ATHANOR_DEPLOY_GREEN_URL: `http://127.0.0.1:${ports.green}`,
            ATHANOR_DEPLOY_UPSTREAM_FILE: upstreamFile,
            ATHANOR_DEPLOY_TEST_COMMAND: 'true',
            ATHANOR_DEPLOY_RELOAD_COMMAND: 'true',
            // No nginx is reloaded here: never the machine's own, should it run one.
            ATHANOR_DEPLOY_PROXY_PID_FILE: path.join(dir, 'no-nginx.pid'),
            ...env,
          },
        });

      // Blue is not running: refused before anything is written.
      const down = await deploy(['switch', 'blue']);
      expect(down.code).toBe(3);
      expect(down.stderr).toMatch(/blue at http:\/\/127\.0\.0\.1:\d+ is not ready \(server_unreachable/);
      expect(existsSync(upstreamFile)).toBe(false);

      // The proxy rejects the new file: it is taken back, so the proxy never points at nothing new.
      const rejected = await deploy(['switch', 'green'], {
        ATHANOR_DEPLOY_TEST_COMMAND: 'echo "bad upstream" >&2; false',
      });
      expect(rejected.code).toBe(1);
      expect(rejected.stderr).toContain('bad upstream');
      expect(existsSync(upstreamFile)).toBe(false);

      const first = await deploy(['switch', 'green']);
      expect(first.code, first.stderr).toBe(0);
      expect(readFileSync(upstreamFile, 'utf8')).toMatch(
        new RegExp(`server 127\\.0\\.0\\.1:${ports.green};`),
      );
      expect((await deploy(['rollback'])).code).toBe(2);

      running.push(await startServeProcess(ports.blue, serveEnv));
      const status = JSON.parse((await deploy(['status', '--json'])).stdout) as {
        live: string;
        colours: { colour: string; ready: boolean; version: string; schema: number; inFlight: number }[];
      };
      expect(status.live).toBe('green');
      const schemaVersion = Math.max(...migrations.map((m) => m.id));
      expect(status.colours.map((c) => [c.colour, c.ready, c.schema, c.inFlight])).toEqual([
        ['blue', true, schemaVersion, 0],
        ['green', true, schemaVersion, 0],
      ]);
      const toBlue = await deploy(['switch', 'blue']);
      expect(toBlue.code, toBlue.stderr).toBe(0);
      expect(toBlue.stdout).toContain('blue');

      // A newer release applied a breaking migration: the older colours now refuse to serve it,
      // and a rollback to one of them is refused like the start guard would refuse it.
      await store.db
        .insertInto('athanor_migrations')
        .values({
          id: 99,
          name: 'drop-old-shape',
          checksum: 'x',
          breaking: 1,
          applied_at: new Date().toISOString(),
          app_version: '9.0.0',
          duration_ms: 1,
          backup_id: null,
        })
        .execute();
      const mixed = await deploy(['rollback']);
      expect(mixed.code).toBe(6);
      expect(mixed.stderr).toContain('breaking migration 99');
      expect(readFileSync(upstreamFile, 'utf8')).toContain('# athanor-live: blue');

      const log = JSON.parse((await deploy(['log', '--json'])).stdout) as LogEntry[];
      expect(
        log.map((e) => [e.action, e.target, e.outcome, e.details.code ?? e.details.from ?? null]),
      ).toEqual([
        ['deploy.rollback', 'green', 'error', 'schema_newer'],
        ['deploy.switch', 'blue', 'ok', 'green'],
        ['deploy.rollback', null, 'error', 'invalid_argument'],
        ['deploy.switch', 'green', 'ok', null],
        ['deploy.switch', 'green', 'error', 'deploy_proxy_failed'],
        ['deploy.switch', 'blue', 'error', 'deploy_not_ready'],
      ]);
      for (const entry of log) expect(entry.actor).toMatch(/.@./);
    },
  );
});
