import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { afterAll } from 'vitest';
import { cliPath } from './cli.js';

/** An `athanor compute run` child process, as a compute host runs it; killed when the file ends. */
export interface ComputeRunProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Everything it wrote on stderr so far. */
  log(): string;
}

export function startComputeRun(
  credentials: { url: string; identifier: string; key: string },
  args: readonly string[] = [],
): ComputeRunProcess {
  const child = spawn(process.execPath, [cliPath, 'compute', 'run', ...args], {
    env: {
      ...process.env,
      ATHANOR_URL: credentials.url,
      ATHANOR_COMPUTE_ID: credentials.identifier,
      ATHANOR_COMPUTE_KEY: credentials.key,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  afterAll(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exited, log: () => log };
}
