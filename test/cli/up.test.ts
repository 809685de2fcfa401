import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../helpers/postgres-cluster.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { cliPath, runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';
import { until } from '../helpers/until.js';

describeEachBackend('athanor up', (backend) => {
  const dir = tempDir();

  it(
    'serves, runs a local compute service, and backs itself up and drills without anyone asking',
    { timeout: 120_000 },
    async () => {
      const { url: databaseUrl } = await freshStore(backend, dir, { migrated: false });
      const port = await freePort();
      const dataDir = `${dir}/up-${backend}`;
      const env = {
        ...process.env,
        ATHANOR_DATABASE_URL: databaseUrl,
        ATHANOR_DATA_DIR: dataDir,
        ATHANOR_PORT: String(port),
        ATHANOR_LOG_LEVEL: 'warn',
        ATHANOR_BACKUP_SCHEDULE: '*/3 * * * * *',
        ATHANOR_BACKUP_DRILL_SCHEDULE: '*/5 * * * * *',
      };
      const child = spawn(process.execPath, [cliPath, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stderr.on('data', (c: Buffer) => (log += c.toString()));
      try {
        const keyFile = await until(
          'the expected state',
          async () => /ATHANOR_KEY_FILE=(\S+)/.exec(log)?.[1],
          30_000,
        );
        // The key is shown once, framed, and kept in a file only its owner can read.
        const key = readFileSync(keyFile, 'utf8').trim();
        expect(keyFile).toBe(path.resolve(dataDir, 'admin.key'));
        expect(statSync(keyFile).mode & 0o777).toBe(0o600);
        expect(log.split(key).length - 1).toBe(1);
        expect(log).toMatch(new RegExp(`\\|\\s+${key}\\s+\\|`));
        const base = `http://127.0.0.1:${port}`;
        const cli = (args: string[]) =>
          runCli(args, {
            env: {
              ATHANOR_URL: base,
              ATHANOR_ID: 'admin',
              ATHANOR_KEY: key,
              ATHANOR_DATABASE_URL: databaseUrl,
              ATHANOR_DATA_DIR: dataDir,
            },
          });
        const network = (
          await cli(['network', 'submit', 'examples/hello-network.json', '--scope', 'demo-first-run'])
        ).stdout.trim();
        const shown = JSON.parse((await cli(['network', 'show', network, '--json'])).stdout) as {
          transformations: { key: string }[];
        };
        for (const tf of shown.transformations) {
          const task = (await cli(['task', 'create', tf.key])).stdout.trim();
          expect((await cli(['task', 'action', network, task])).code).toBe(0);
        }
        await until(
          'the expected state',
          async () => {
            const status = JSON.parse((await cli(['network', 'status', network, '--json'])).stdout) as {
              complete?: number;
            };
            return status.complete === 3 ? true : undefined;
          },
          30_000,
        );
        // A monitor can tell from outside that backups and drills happen.
        const metrics = await until(
          'the expected state',
          async () => {
            const text = await (await fetch(`${base}/metrics`)).text();
            const verified = /athanor_backup_last_verified_timestamp_seconds (\d+)/.exec(text)?.[1];
            return verified && Number(verified) > 0 ? text : undefined;
          },
          45_000,
        );
        expect(
          Number(/athanor_backup_last_success_timestamp_seconds (\d+)/.exec(metrics)?.[1]),
        ).toBeGreaterThan(0);
        const status = await cli(['backup', 'status', '--max-age', '1h', '--verified']);
        expect(status.code, status.stdout + status.stderr).toBe(0);
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.on('close', r));
      }
    },
  );
});
