import { createInterface } from 'node:readline/promises';
import { UserClient } from '../client/user-client.js';
import type { Command } from 'commander';
import type { Config, ConfigFlags } from '../config/resolve-config.js';
import { resolveConfig } from '../config/resolve-config.js';
import { AthanorError } from '../domain/errors.js';
import type { OpenStoreOptions, Store } from '../store/open-store.js';

/** A user API client from --url/--id/--key, else the `url`, `id` and `key` settings. */
export function userClient(command: Command): UserClient {
  const options = command.optsWithGlobals<{ url?: string; server?: string; id?: string; key?: string }>();
  const config = commandConfig(command);
  const url = options.server ?? options.url ?? config.url;
  const identifier = options.id ?? config.id;
  const key = options.key ?? config.key;
  if (!identifier || !key) {
    throw new AthanorError(
      'invalid_argument',
      'set ATHANOR_ID and ATHANOR_KEY (or pass --id and --key) to the user identity and key to use; ' +
        "'athanor up' prints them on its first run",
    );
  }
  return new UserClient({ url, identifier, key });
}

interface GlobalOptions {
  config?: string;
  databaseUrl?: string;
  dataDir?: string;
  json?: boolean;
}

/** The configuration for a command, from its flags, the environment, the config file, defaults. */
export function commandConfig(command: Command): Config {
  const options = command.optsWithGlobals<GlobalOptions>();
  const flags: ConfigFlags = {
    config: options.config,
    databaseUrl: options.databaseUrl,
    dataDir: options.dataDir,
  };
  return resolveConfig(flags);
}

export function wantsJson(command: Command): boolean {
  return command.optsWithGlobals<GlobalOptions>().json === true;
}

/** Opens the state store for the duration of `fn` and always closes it. */
export async function withStore<T>(
  command: Command,
  fn: (store: Store, config: Config) => Promise<T>,
  options: OpenStoreOptions = {},
): Promise<T> {
  const config = commandConfig(command);
  // The database drivers load only for commands that open the store: API calls never need them.
  const { openStore } = await import('../store/open-store.js');
  const store = await openStore(config, options);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

/** Reads all of standard input (for `-k -`), without the trailing line break. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * Destructive verbs go ahead with `--yes`, or after the operator types `yes` at a terminal.
 * Without a terminal and without `--yes` they refuse (exit 2).
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) {
    throw new AthanorError('invalid_argument', `${question}: refusing without --yes (no terminal to ask on)`);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question}. Type 'yes' to continue: `);
    if (answer.trim().toLowerCase() !== 'yes') throw new AthanorError('invalid_argument', 'cancelled');
  } finally {
    prompt.close();
  }
}

/** Collects a repeatable option (`-s a -s b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses a whole number option within `[min, max]` (default: any n ≥ 0), or fails with a usage error naming the flag. */
export function integerOption(flag: string, bounds: { readonly min?: number; readonly max?: number } = {}) {
  const min = bounds.min ?? 0;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range =
        bounds.max === undefined
          ? min === 0
            ? 'a whole number'
            : `a whole number ≥ ${min}`
          : `a whole number from ${min} to ${max}`;
      throw new AthanorError('invalid_argument', `${flag} takes ${range}, got '${value}'`);
    }
    return n;
  };
}

/** A TCP port flag: 0 (any free port) to 65535. */
export const portOption = (flag = '--port') => integerOption(flag, { max: 65_535 });
