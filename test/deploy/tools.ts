import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

/**
 * The settings this kind of machine needs for podman: runc (crun refuses hybrid cgroups), limits
 * no higher than the sandbox allows, and the host's network (loopback only).
 */
export const podmanGlobal = ['--runtime', 'runc'] as const;
export const podmanLimits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'] as const;

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Tools the deploy tests need. A missing one skips its tests with a loud banner; under CI=true,
 * where .ci/run installs them, it is a failure.
 */
export function requireTools(what: string, tools: readonly string[]): boolean {
  const missing = tools.filter((tool) => !hasCommand(tool));
  if (missing.length === 0) return true;
  const reason = `${what} needs ${missing.join(', ')}, not found on PATH`;
  if (process.env.CI === 'true') throw new Error(`${reason}. CI must run these tests: install them.`);
  const banner = '!'.repeat(78);
  process.stderr.write(
    `\n${banner}\n!! SKIPPING ${reason}.\n!! Under CI=true this is a failure.\n${banner}\n\n`,
  );
  return false;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end, never through a shell. */
export function run(
  file: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

export async function podman(args: readonly string[], input?: string): Promise<RunResult> {
  return run('podman', [...podmanGlobal, ...args], { input });
}
