import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { cliPath } from './cli.js';
import { until } from './until.js';

/** An `athanor serve` child process, as an operator or a service manager runs it. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it wrote on stderr so far. */
  log(): string;
  /** Resolves with the exit status (a signal name when killed by one). */
  readonly exited: Promise<number | string>;
}

/** What `/readyz` says, whatever its status. */
export async function readiness(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Starts `athanor serve` on a port and waits until `/readyz` answers 200. */
export async function startServeProcess(
  port: number,
  env: Record<string, string>,
  extraArgs: readonly string[] = [],
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', String(port), ...extraArgs], {
    env: { ...process.env, ATHANOR_LOG_LEVEL: 'warn', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const url = `http://127.0.0.1:${port}`;
  const early = exited.then((code) => {
    throw new Error(`serve exited (${code}) before it was ready: ${log}`);
  });
  await Promise.race([
    until(`${url}/readyz`, async () => ((await readiness(url)).status === 200 ? true : undefined), 30_000),
    early,
  ]);
  early.catch(() => {});
  return { child, url, log: () => log, exited };
}
