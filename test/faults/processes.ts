import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { queueIdentities, seedQueueIdentities } from '../helpers/identities.js';
import { migrate } from '../../src/store/migrator.js';
import { openStore } from '../../src/store/open-store.js';
import { cliPath } from '../helpers/cli.js';

/** The user `alice` and the compute identity `hpc` of the fault tests, with their keys. */
export const faultIdentities = queueIdentities;

/** Migrates the database at `databaseUrl` (created when missing) and adds `faultIdentities` on `org-camp-*`. */
export async function prepareDatabase(databaseUrl: string): Promise<void> {
  const setup = await openStore({ databaseUrl, busyTimeoutMs: 1000 }, { create: true });
  try {
    await migrate(setup, { lockTimeoutMs: 10_000 });
    await seedQueueIdentities(setup);
  } finally {
    await setup.close();
  }
}

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
