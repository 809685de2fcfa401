import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../helpers/postgres-cluster.js';
import { runCli } from '../helpers/cli.js';
import { podman, podmanLimits, repoRoot } from './tools.js';
import { until } from '../helpers/until.js';

const image = inject('athanorImage');
const baseImage = inject('athanorBaseImage');

interface ImageConfig {
  User: string;
  Entrypoint: string[];
  Cmd: string[];
  Volumes: Record<string, unknown> | null;
  Labels: Record<string, string>;
  StopSignal?: string;
}

interface ImageInspection {
  Size: number;
  Config: ImageConfig;
  Healthcheck?: { Test: string[] };
}

async function inspectImage(name: string): Promise<ImageInspection> {
  const result = await podman(['image', 'inspect', '--format', 'json', name]);
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as ImageInspection[])[0]!;
}

describe.skipIf(!image)('the container image', () => {
  const volume = `athanor-test-${process.pid}`;
  const containers: string[] = [];
  const logs = mkdtempSync(path.join(os.tmpdir(), 'athanor-image-'));

  afterAll(async () => {
    for (const name of containers) await podman(['rm', '-f', '-t', '0', name]);
    await podman(['volume', 'rm', '-f', volume]);
    rmSync(logs, { recursive: true, force: true });
  });

  it('runs athanor up as a non-root user on a /data volume, with labels and a health check', async () => {
    const { Config, Size, Healthcheck } = await inspectImage(image);
    expect(Config.Entrypoint).toEqual(['athanor']);
    expect(Config.Cmd).toEqual(['up']);
    expect(Config.User).toBe('10001:10001');
    expect(Object.keys(Config.Volumes ?? {})).toEqual(['/data']);
    expect(Config.StopSignal).toBe('SIGTERM');
    expect(Healthcheck?.Test.join(' ')).toContain('/healthz');
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(Config.Labels['org.opencontainers.image.version']).toBe(pkg.version);
    expect(Config.Labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$|^unknown$/);

    const base = await inspectImage(baseImage);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
    process.stderr.write(
      `[deploy] image ${mib(Size)} MiB on a base of ${mib(base.Size)} MiB (+${mib(Size - base.Size)} MiB)\n`,
    );
    // Production dependencies only: no compiler, no TypeScript, no test runner in the image.
    const listing = await podman([
      'run',
      '--rm',
      ...podmanLimits,
      '--entrypoint',
      'ls',
      image,
      '/app/node_modules',
    ]);
    expect(listing.code, listing.stderr).toBe(0);
    const installed = listing.stdout.split('\n');
    expect(installed).toContain('better-sqlite3');
    expect(installed).not.toContain('typescript');
    expect(installed).not.toContain('vitest');
    const compiler = await podman([
      'run',
      '--rm',
      ...podmanLimits,
      '--entrypoint',
      'sh',
      image,
      '-c',
      'command -v g++',
    ]);
    expect(compiler.code).not.toBe(0);
  });

  it('serves the quick start from a volume, stops cleanly on SIGTERM and starts again with the same data and admin', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const start = async (name: string) => {
      containers.push(name);
      const started = await podman([
        'run',
        '-d',
        '--name',
        name,
        '--network',
        'host',
        ...podmanLimits,
        '-v',
        `${volume}:/data`,
        // The host's network here: keep the server on loopback.
        '-e',
        'ATHANOR_HOST=127.0.0.1',
        '-e',
        `ATHANOR_PORT=${port}`,
        image,
      ]);
      expect(started.code, started.stderr).toBe(0);
      await until(
        `${name} to answer /readyz`,
        async () => ((await fetch(`${url}/readyz`)).ok ? true : undefined),
        60_000,
        250,
      );
    };
    const logsOf = async (name: string) => {
      const result = await podman(['logs', name]);
      return result.stdout + result.stderr;
    };

    await start('athanor-test-first');
    // The image's own health check passes against the running server.
    const health = await podman(['healthcheck', 'run', 'athanor-test-first']);
    expect(health.code, health.stdout + health.stderr).toBe(0);
    // The first run keeps the admin key in the volume (and shows it once in the log).
    const keyRead = await podman(['exec', 'athanor-test-first', 'cat', '/data/admin.key']);
    expect(keyRead.code, keyRead.stderr).toBe(0);
    const key = keyRead.stdout.trim();
    expect(key.length).toBeGreaterThan(20);
    expect(await logsOf('athanor-test-first')).toContain(key);
    const cli = (args: string[]) =>
      runCli(args, { env: { ATHANOR_URL: url, ATHANOR_ID: 'admin', ATHANOR_KEY: key }, cwd: repoRoot });

    // The README's quick start, driven from the host against the container.
    const submitted = await cli([
      'network',
      'submit',
      'examples/hello-network.json',
      '--scope',
      'demo-first-run',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const network = submitted.stdout.trim();
    const created = await cli(['task', 'create', '--network', network, '--action']);
    expect(created.code, created.stderr).toBe(0);
    const tasks = created.stdout.trim().split('\n');
    expect(tasks.length).toBeGreaterThan(0);
    const watched = await cli(['network', 'watch', network, '--timeout', '2m']);
    expect(watched.code, watched.stdout + watched.stderr).toBe(0);
    const listed = JSON.parse((await cli(['task', 'list', '--network', network, '--json'])).stdout) as {
      status: string;
    }[];
    expect(listed.map((t) => t.status)).toEqual(tasks.map(() => 'complete'));
    const results = await cli(['result', 'list', tasks[0]!, '--json']);
    expect(results.code, results.stderr).toBe(0);
    const resultId = (JSON.parse(results.stdout) as { id: string }[])[0]!.id;
    const before = await cli(['result', 'get', resultId]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout.length).toBeGreaterThan(0);

    // SIGTERM reaches the server (PID 1 in the container), which stops well inside the grace period.
    const stopped = await podman(['stop', '-t', '30', 'athanor-test-first']);
    expect(stopped.code, stopped.stderr).toBe(0);
    const exit = await podman(['inspect', '--format', '{{.State.ExitCode}}', 'athanor-test-first']);
    expect(exit.stdout.trim(), await logsOf('athanor-test-first')).toBe('0');

    await start('athanor-test-second');
    const secondLog = await logsOf('athanor-test-second');
    // The same admin: no new key is made, and the old one still works.
    expect(secondLog).not.toContain('First run');
    expect(secondLog).not.toContain(key);
    const after = await cli(['result', 'get', resultId]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toBe(before.stdout);
    const again = JSON.parse((await cli(['task', 'list', '--network', network, '--json'])).stdout) as {
      status: string;
    }[];
    expect(again.map((t) => t.status)).toEqual(tasks.map(() => 'complete'));
  });
});
