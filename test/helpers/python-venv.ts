import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
export const pythonPackageDir = path.join(root, 'python');

/** The python3 on PATH, or why the Python client cannot be tested here. */
export function findPython(): { python: string } | { unavailable: string } {
  const probe = spawnSync(
    'python3',
    ['-c', 'import sys, venv, ensurepip; print(sys.version_info >= (3, 10))'],
    {
      encoding: 'utf8',
    },
  );
  if (probe.error) return { unavailable: 'python3 is not on PATH' };
  if (probe.status !== 0) {
    return { unavailable: 'python3 has no venv/ensurepip support (Debian: apt-get install python3-venv)' };
  }
  if (probe.stdout.trim() !== 'True') return { unavailable: 'python3 is older than 3.10' };
  return { python: 'python3' };
}

export interface CommandResult {
  readonly code: number;
  readonly output: string;
}

/** Runs a command, collecting stdout and stderr together (as a terminal shows them). */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

async function mustRun(command: string, args: readonly string[]): Promise<void> {
  const done = await run(command, args);
  if (done.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${done.code}:\n${done.output}`);
}

/**
 * A virtual environment holding `./python[all]` and pytest, kept under node_modules/.cache and
 * keyed by the package's pyproject.toml, so a repeat run only reinstalls the package itself.
 * A fresh machine builds it from scratch with `pip install ./python[all]`.
 */
export async function pythonVenv(python: string): Promise<string> {
  const key = createHash('sha256')
    .update(readFileSync(path.join(pythonPackageDir, 'pyproject.toml')))
    .update(spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout)
    .digest('hex')
    .slice(0, 16);
  const cache = path.join(root, 'node_modules', '.cache', 'athanor-python');
  const venv = path.join(cache, `venv-${key}`);
  const bin = path.join(venv, 'bin', 'python');
  // Written once the install finished: a venv without it was cut short and is built again.
  const ready = path.join(venv, 'athanor-ready');
  if (!existsSync(ready)) {
    mkdirSync(cache, { recursive: true });
    rmSync(venv, { recursive: true, force: true });
    await mustRun(python, ['-m', 'venv', venv]);
    // An index that cannot be reached is asked once, not retried with backoff, and the package is
    // built with the hatchling installed here rather than in a second, isolated environment that
    // resolves everything again: together a few minutes less on a machine with a partial mirror.
    const quick = ['--quiet', '--retries', '0', '--timeout', '5'];
    await mustRun(bin, ['-m', 'pip', 'install', ...quick, 'hatchling', 'pytest']);
    await mustRun(bin, [
      '-m',
      'pip',
      'install',
      ...quick,
      '--no-build-isolation',
      `${pythonPackageDir}[all]`,
    ]);
    writeFileSync(ready, '');
  }
  // The package as it is now (its dependencies are already there): no index needed.
  await mustRun(bin, [
    '-m',
    'pip',
    'install',
    '--quiet',
    '--no-deps',
    '--no-build-isolation',
    '--no-index',
    '--force-reinstall',
    pythonPackageDir,
  ]);
  return bin;
}
