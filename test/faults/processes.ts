import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { cliPath } from '../helpers/cli.js';

/** A long-running `athanor` process (serve, compute run) whose output is kept for assertions. */
export interface AthanorProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** True while the process has not exited. */
  alive(): boolean;
  log(): string;
}

export function startAthanor(args: readonly string[], env: Record<string, string>): AthanorProcess {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, NO_COLOR: '1', ATHANOR_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let running = true;
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      running = false;
      resolve(code);
    }),
  );
  return { child, exited, alive: () => running, log: () => log };
}

/** Polls `condition` every 100 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function until(
  what: string,
  condition: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch {
      // not yet: the dependency may be down
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One HTTP request with a hard bound: a hang shows up as status 0 rather than a stuck test. */
export async function probe(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; retryAfter: string | null; body: unknown }> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
  } catch {
    return { status: 0, retryAfter: null, body: undefined };
  }
}

/** A status a client can act on: success, its own mistake, or "retry later". */
export const acceptableStatus = (status: number) =>
  (status >= 200 && status < 300) || (status >= 400 && status < 500) || status === 503;
