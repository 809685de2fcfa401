import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AthanorError } from '../domain/errors.js';

/** One setting: where it comes from and what it defaults to. The table drives `--help` too. */
interface SettingSpec {
  readonly env: string;
  readonly description: string;
  readonly kind: 'string' | 'integer';
}

export const settingSpecs = {
  dataDir: {
    env: 'ATHANOR_DATA_DIR',
    kind: 'string',
    description: 'data directory (default ./athanor-data)',
  },
  databaseUrl: {
    env: 'ATHANOR_DATABASE_URL',
    kind: 'string',
    description: 'sqlite:<path> or postgres://user:pass@host:port/db (default sqlite:<data dir>/athanor.db)',
  },
  objectsUrl: {
    env: 'ATHANOR_OBJECTS_URL',
    kind: 'string',
    description: 'file:<dir> or s3://bucket/prefix (default file:<data dir>/objects)',
  },
  busyTimeoutMs: {
    env: 'ATHANOR_BUSY_TIMEOUT_MS',
    kind: 'integer',
    description: 'how long SQLite waits for a writer lock (default 10000)',
  },
  lockTimeoutMs: {
    env: 'ATHANOR_LOCK_TIMEOUT_MS',
    kind: 'integer',
    description: 'how long a migration waits for the migration lock (default 60000)',
  },
  host: {
    env: 'ATHANOR_HOST',
    kind: 'string',
    description: 'address the server listens on (default 127.0.0.1)',
  },
  port: { env: 'ATHANOR_PORT', kind: 'integer', description: 'port the server listens on (default 8080)' },
  tokenTtlSeconds: {
    env: 'ATHANOR_TOKEN_TTL_SECONDS',
    kind: 'integer',
    description: 'lifetime of API tokens (default 1800)',
  },
  bodyLimitBytes: {
    env: 'ATHANOR_BODY_LIMIT_BYTES',
    kind: 'integer',
    description: 'largest JSON request body (default 16777216)',
  },
  tokenRateLimit: {
    env: 'ATHANOR_TOKEN_RATE_LIMIT',
    kind: 'integer',
    description: 'token requests per minute per client address (default 60)',
  },
  leaseTtlMs: {
    env: 'ATHANOR_LEASE_TTL_MS',
    kind: 'integer',
    description: 'how long a claim lasts without a heartbeat (default 120000)',
  },
  registrationTtlMs: {
    env: 'ATHANOR_REGISTRATION_TTL_MS',
    kind: 'integer',
    description: 'how long a compute service registration lasts without a heartbeat (default 300000)',
  },
  sweepIntervalMs: {
    env: 'ATHANOR_SWEEP_INTERVAL_MS',
    kind: 'integer',
    description: 'how often the server expires stale leases and registrations (default 10000)',
  },
  shutdownDelayMs: {
    env: 'ATHANOR_SHUTDOWN_DELAY_MS',
    kind: 'integer',
    description: 'on SIGTERM, how long /readyz answers 503 before the listener closes (default 5000; up: 0)',
  },
  shutdownTimeoutMs: {
    env: 'ATHANOR_SHUTDOWN_TIMEOUT_MS',
    kind: 'integer',
    description: 'on SIGTERM, how long until the process exits even with requests in flight (default 25000)',
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof settingSpecs;

/** The resolved configuration: one frozen object, read once per process. */
export interface Config {
  /** Data directory; default `./athanor-data`. */
  readonly dataDir: string;
  /** State store URL; default `sqlite:<dataDir>/athanor.db`. */
  readonly databaseUrl: string;
  /** Object store URL; default `file:<dataDir>/objects`. */
  readonly objectsUrl: string;
  /** SQLite busy timeout in milliseconds; default 10000. */
  readonly busyTimeoutMs: number;
  /** Migration lock wait in milliseconds; default 60000. */
  readonly lockTimeoutMs: number;
  /** Server listen address; default `127.0.0.1`. */
  readonly host: string;
  /** Server port; default 8080. */
  readonly port: number;
  /** API token lifetime in seconds; default 1800. */
  readonly tokenTtlSeconds: number;
  /** Largest JSON request body in bytes; default 16 MiB. */
  readonly bodyLimitBytes: number;
  /** Token requests per minute per client address; default 60. */
  readonly tokenRateLimit: number;
  /** Claim lifetime without a heartbeat, in milliseconds; default 120000. */
  readonly leaseTtlMs: number;
  /** Compute service registration lifetime without a heartbeat, in milliseconds; default 300000. */
  readonly registrationTtlMs: number;
  /** Interval of the lease and registration sweeper, in milliseconds; default 10000. */
  readonly sweepIntervalMs: number;
  /** Readiness-off delay before the listener closes on SIGTERM; default 5000 (`up`: 0); undefined: not set. */
  readonly shutdownDelayMs: number | undefined;
  /** From the first SIGTERM to a forced exit, in milliseconds; default 25000. */
  readonly shutdownTimeoutMs: number;
  /**
   * JWT signing secret from `ATHANOR_JWT_SECRET` or the file named by `ATHANOR_JWT_SECRET_FILE`
   * (never from the config file); when absent, one is generated once and kept in the state store.
   */
  readonly jwtSecret: string | undefined;
  /** The config file that was read, if any. */
  readonly configFile: string | undefined;
}

export type ConfigFlags = Partial<Record<SettingName, string | number | undefined>> & {
  readonly config?: string | undefined;
};

const defaultConfigFile = 'athanor.config.json';

/**
 * Resolves configuration: flag > `ATHANOR_*` environment > config file > default.
 * The config file is `--config`, else `ATHANOR_CONFIG`, else `./athanor.config.json` if present.
 */
export function resolveConfig(
  flags: ConfigFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Config {
  const explicitFile = flags.config ?? env.ATHANOR_CONFIG;
  const configFile =
    explicitFile ?? (existsSync(path.join(cwd, defaultConfigFile)) ? defaultConfigFile : undefined);
  const fileValues = configFile === undefined ? {} : readConfigFile(path.resolve(cwd, configFile));

  const pick = (name: SettingName): string | number | undefined => {
    const spec = settingSpecs[name];
    const raw = flags[name] ?? nonEmpty(env[spec.env]) ?? fileValues[name];
    if (raw === undefined) return undefined;
    if (spec.kind === 'integer') {
      const value = typeof raw === 'number' ? raw : Number(raw);
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new AthanorError(
          'invalid_config',
          `${spec.env} (${name}) must be a whole number, got '${raw}'`,
        );
      }
      return value;
    }
    return String(raw);
  };

  const dataDir = path.resolve(cwd, (pick('dataDir') as string | undefined) ?? 'athanor-data');
  const databaseUrl = normalizeDatabaseUrl(
    (pick('databaseUrl') as string | undefined) ?? `sqlite:${path.join(dataDir, 'athanor.db')}`,
    cwd,
  );
  const objectsUrl = (pick('objectsUrl') as string | undefined) ?? `file:${path.join(dataDir, 'objects')}`;
  return Object.freeze({
    dataDir,
    databaseUrl,
    objectsUrl,
    busyTimeoutMs: (pick('busyTimeoutMs') as number | undefined) ?? 10_000,
    lockTimeoutMs: (pick('lockTimeoutMs') as number | undefined) ?? 60_000,
    host: (pick('host') as string | undefined) ?? '127.0.0.1',
    port: (pick('port') as number | undefined) ?? 8080,
    tokenTtlSeconds: (pick('tokenTtlSeconds') as number | undefined) ?? 1800,
    bodyLimitBytes: (pick('bodyLimitBytes') as number | undefined) ?? 16 * 1024 * 1024,
    tokenRateLimit: (pick('tokenRateLimit') as number | undefined) ?? 60,
    leaseTtlMs: (pick('leaseTtlMs') as number | undefined) ?? 120_000,
    registrationTtlMs: (pick('registrationTtlMs') as number | undefined) ?? 300_000,
    sweepIntervalMs: (pick('sweepIntervalMs') as number | undefined) ?? 10_000,
    shutdownDelayMs: pick('shutdownDelayMs') as number | undefined,
    shutdownTimeoutMs: (pick('shutdownTimeoutMs') as number | undefined) ?? 25_000,
    jwtSecret: readSecret(env, 'ATHANOR_JWT_SECRET'),
    configFile,
  });
}

/** A secret from `NAME` or from the file named by `NAME_FILE`; never from the config file. */
function readSecret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const direct = nonEmpty(env[name]);
  if (direct !== undefined) return direct;
  const file = nonEmpty(env[`${name}_FILE`]);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (cause) {
    throw new AthanorError(
      'invalid_config',
      `cannot read ${name}_FILE (${file}): ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function readConfigFile(file: string): Partial<Record<SettingName, string | number>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new AthanorError('invalid_config', `cannot read config file ${file}: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AthanorError('invalid_config', `config file ${file} must hold a JSON object`);
  }
  const known = new Set(Object.keys(settingSpecs));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw new AthanorError(
        'invalid_config',
        `config file ${file}: unknown setting '${key}'; known settings: ${[...known].join(', ')}`,
      );
    }
  }
  return parsed as Partial<Record<SettingName, string | number>>;
}

/** Relative SQLite paths are resolved against the working directory so every process agrees. */
function normalizeDatabaseUrl(url: string, cwd: string): string {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file === ':memory:') return url;
    return `sqlite:${path.resolve(cwd, file)}`;
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://') || url === 'postgres:') return url;
  throw new AthanorError(
    'invalid_config',
    `database URL '${redactUrl(url)}' is not supported: use sqlite:<path> or postgres://user:pass@host:port/db`,
  );
}

/** A URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}
