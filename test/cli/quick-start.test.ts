import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { freePort } from '../helpers/postgres-cluster.js';
import { until } from '../helpers/until.js';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** The README's fenced `sh` blocks of its quick start section, in order. */
function quickStartBlocks(): string[] {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('## Quick start');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

/** A fresh directory that looks like a checkout: the README's commands run in it unchanged. */
function checkout(): string {
  const dir = tempDir('athanor-quick-start-');
  for (const entry of ['athanor', 'dist', 'examples', 'package.json'])
    symlinkSync(path.join(root, entry), path.join(dir, entry));
  return dir;
}

const portIsFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

const env = (port: number) => {
  const copy: NodeJS.ProcessEnv = { ...process.env, ATHANOR_PORT: String(port) };
  for (const key of Object.keys(copy))
    if (key.startsWith('ATHANOR_') && key !== 'ATHANOR_PORT') delete copy[key];
  return copy;
};

describe('the README quick start', () => {
  it(
    'runs verbatim on a fresh data dir; up on a terminal frames the key and logs no requests',
    { timeout: 120_000 },
    async () => {
      const [start, afterUp] = quickStartBlocks();
      expect(start).toMatch(/^npm install && \.\/athanor up /m);
      expect(afterUp, 'the commands after up').toBeTruthy();
      const dir = checkout();
      const port = await freePort();
      // `script` gives up a pseudo-terminal, as a person's shell would.
      const up = spawn('script', ['-qfec', './athanor up', '/dev/null'], {
        cwd: dir,
        env: { ...env(port), TERM: 'dumb' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      up.stdout.on('data', (c: Buffer) => (screen += c.toString()));
      try {
        await until(
          'the expected state',
          () =>
            screen.includes('is up on') && existsSync(path.join(dir, 'athanor-data/admin.key'))
              ? true
              : undefined,
          60_000,
        );
        // The commands after `up`, exactly as the README has them (only the port differs).
        const script = path.join(dir, 'quick-start.sh');
        writeFileSync(script, `set -eu\n${(afterUp ?? '').replaceAll(':8080', `:${port}`)}`);
        const { stdout, stderr } = await run('bash', [script], { cwd: dir, env: env(port), timeout: 90_000 });
        expect(stdout, stderr).toMatch(/finished: complete 3/);
        expect(stderr).toMatch(/created 3 task\(s\)/);

        const key = readFileSync(path.join(dir, 'athanor-data/admin.key'), 'utf8').trim();
        expect(screen.split(key).length - 1, 'the key is shown once').toBe(1);
        expect(screen).toMatch(new RegExp(`\\|\\s+${key}\\s+\\|`));
        // Three tasks were claimed and completed through the API: none of it is a log line.
        expect(screen).not.toMatch(/"level":|incoming request|request completed/);
        expect(screen).toMatch(/\d\d:\d\d:\d\d INFO {2}backup scheduler started/);
      } finally {
        up.kill('SIGTERM');
        await new Promise((r) => up.on('close', r));
      }
    },
  );

  it(
    'a script that starts up in the background and sends SIGTERM to $! frees the port',
    { timeout: 90_000 },
    async () => {
      const dir = checkout();
      const port = await freePort();
      const pidFile = path.join(dir, 'up.pid');
      await run('bash', ['-c', `./athanor up > up.log 2>&1 & echo $! > ${pidFile}`], {
        cwd: dir,
        env: env(port),
      });
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const log = () => readFileSync(path.join(dir, 'up.log'), 'utf8');
      await until('the expected state', () => (log().includes('is up on') ? true : undefined), 60_000);
      expect(await portIsFree(port)).toBe(false);
      process.kill(pid, 'SIGTERM');
      await until(
        'the expected state',
        () => {
          try {
            process.kill(pid, 0);
            return undefined;
          } catch {
            return true;
          }
        },
        30_000,
      );
      expect(await portIsFree(port)).toBe(true);
      expect(log()).toMatch(/received SIGTERM: stopping/);
    },
  );
});
