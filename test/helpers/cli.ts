import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import path from 'node:path';

export const cliPath = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly env?: Record<string, string | undefined>;
  readonly input?: string;
  readonly cwd?: string;
}

/** A running `athanor` child process whose output can be read while it runs. */
export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** What it wrote on stdout so far. */
  stdout(): string;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** Resolves once it exited, with everything it wrote. */
  readonly done: Promise<CliResult>;
}

/** Starts the built `athanor` binary in a child process, as an operator would. */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: env as NodeJS.ProcessEnv,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  child.stdin.end(options.input ?? '');
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs the built `athanor` binary in a child process, as an operator would. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}
