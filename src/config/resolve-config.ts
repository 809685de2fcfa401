import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AthanorError } from '../domain/errors.js';
import { parseDatabaseUrl, sqliteDatabaseUrl } from '../store/database-url.js';

/** One setting: where it comes from and what it defaults to. The table drives `--help` too. */
interface SettingSpec {
  readonly env: string;
  /** What it is; `--help` adds the default from `configDefaults` (or `defaultText`). */
  readonly description: string;
  readonly kind: 'string' | 'integer' | 'boolean';
  /** How the default reads when it depends on other settings (the data directory). */
  readonly defaultText?: string;
  /**
   * A secret: read from `ATHANOR_X` or from the file named by `ATHANOR_X_FILE`, never from the
   * config file, never echoed.
   */
  readonly secret?: true;
  /**
   * Kept exactly as given: an empty value is a value (its reader refuses it) rather than unset,
   * and a `_FILE` loses only its final newline. For encryption keys, where "set to nothing" must
   * never quietly mean "no encryption".
   */
  readonly exact?: true;
}

export const settingSpecs = {
  dataDir: { env: 'ATHANOR_DATA_DIR', kind: 'string', description: 'data directory' },
  databaseUrl: {
    env: 'ATHANOR_DATABASE_URL',
    kind: 'string',
    description: 'sqlite:<path> or postgres://user:pass@host:port/db (or ATHANOR_DATABASE_URL_FILE)',
    defaultText: 'sqlite:<data dir>/athanor.db',
  },
  objectsUrl: {
    env: 'ATHANOR_OBJECTS_URL',
    kind: 'string',
    description: 'file:<dir> or s3://bucket/prefix',
    defaultText: 'file:<data dir>/objects',
  },
  busyTimeoutMs: {
    env: 'ATHANOR_BUSY_TIMEOUT_MS',
    kind: 'integer',
    description: 'how long SQLite waits for a writer lock',
  },
  lockTimeoutMs: {
    env: 'ATHANOR_LOCK_TIMEOUT_MS',
    kind: 'integer',
    description: 'how long a migration waits for the migration lock',
  },
  host: { env: 'ATHANOR_HOST', kind: 'string', description: 'address the server listens on' },
  port: { env: 'ATHANOR_PORT', kind: 'integer', description: 'port the server listens on' },
  tokenTtlSeconds: {
    env: 'ATHANOR_TOKEN_TTL_SECONDS',
    kind: 'integer',
    description: 'lifetime of API tokens',
  },
  bodyLimitBytes: {
    env: 'ATHANOR_BODY_LIMIT_BYTES',
    kind: 'integer',
    description: 'largest JSON request body',
  },
  tokenRateLimit: {
    env: 'ATHANOR_TOKEN_RATE_LIMIT',
    kind: 'integer',
    description: 'token requests per minute per client address',
  },
  leaseTtlMs: {
    env: 'ATHANOR_LEASE_TTL_MS',
    kind: 'integer',
    description: 'how long a claim lasts without a heartbeat',
  },
  registrationTtlMs: {
    env: 'ATHANOR_REGISTRATION_TTL_MS',
    kind: 'integer',
    description: 'how long a compute service registration lasts without a heartbeat',
  },
  sweepIntervalMs: {
    env: 'ATHANOR_SWEEP_INTERVAL_MS',
    kind: 'integer',
    description: 'how often the server expires stale leases and registrations',
  },
  shutdownDelayMs: {
    env: 'ATHANOR_SHUTDOWN_DELAY_MS',
    kind: 'integer',
    description: 'on SIGTERM, how long /readyz answers 503 before the listener closes',
    defaultText: '5000 for serve, 0 for up',
  },
  shutdownTimeoutMs: {
    env: 'ATHANOR_SHUTDOWN_TIMEOUT_MS',
    kind: 'integer',
    description: 'on SIGTERM, how long until the process exits even with requests in flight',
  },
  logLevel: {
    env: 'ATHANOR_LOG_LEVEL',
    kind: 'string',
    description: 'server log level: fatal, error, warn, info, debug, trace or silent',
  },
  trustProxy: {
    env: 'ATHANOR_TRUST_PROXY',
    kind: 'boolean',
    description: 'take client addresses from X-Forwarded-For (behind a reverse proxy): 1 or 0',
  },
  jwtSecret: {
    env: 'ATHANOR_JWT_SECRET',
    kind: 'string',
    secret: true,
    description: 'API token signing secret (or ATHANOR_JWT_SECRET_FILE)',
    defaultText: 'generated once and kept in the state store',
  },
  jwtPreviousSecret: {
    env: 'ATHANOR_JWT_PREVIOUS_SECRET',
    kind: 'string',
    secret: true,
    description:
      'the signing secret being rotated out: its tokens still work (or _FILE); only with ATHANOR_JWT_SECRET',
    defaultText: 'none',
  },
  metricsToken: {
    env: 'ATHANOR_METRICS_TOKEN',
    kind: 'string',
    secret: true,
    description: 'bearer token for the per-scope series of /metrics (or ATHANOR_METRICS_TOKEN_FILE)',
    defaultText: 'none: /metrics names no scope',
  },
  backupTarget: {
    env: 'ATHANOR_BACKUP_TARGET',
    kind: 'string',
    description: 'backup target: file:<dir> or s3://bucket/prefix',
    defaultText: 'file:<data dir>/backups',
  },
  backupSchedule: {
    env: 'ATHANOR_BACKUP_SCHEDULE',
    kind: 'string',
    description: "cron schedule of backups, UTC ('0 * * * *'), or off",
    defaultText: "off for serve; '0 * * * *' for up and backup schedule",
  },
  backupDrillSchedule: {
    env: 'ATHANOR_BACKUP_DRILL_SCHEDULE',
    kind: 'string',
    description: "cron schedule of restore drills ('30 3 * * *'), or off",
    defaultText: "'30 3 * * *' when backups are scheduled",
  },
  backupKeep: {
    env: 'ATHANOR_BACKUP_KEEP',
    kind: 'string',
    description: 'retention after scheduled backups: hourly=24,daily=7, or off',
    defaultText: 'hourly=24,daily=7 for up and backup schedule',
  },
  backupAgeRecipients: {
    env: 'ATHANOR_BACKUP_AGE_RECIPIENTS',
    kind: 'string',
    exact: true,
    description: 'encrypt new backups to these age1… recipients (comma separated)',
    defaultText: 'none: backups are not encrypted',
  },
  backupPassphrase: {
    env: 'ATHANOR_BACKUP_PASSPHRASE',
    kind: 'string',
    secret: true,
    exact: true,
    description:
      'or encrypt new backups with this passphrase (or ATHANOR_BACKUP_PASSPHRASE_FILE); it opens them too',
    defaultText: 'none',
  },
  backupAgeIdentityFile: {
    env: 'ATHANOR_BACKUP_AGE_IDENTITY_FILE',
    kind: 'string',
    exact: true,
    description: 'a file of age identities (AGE-SECRET-KEY-1…) that open encrypted backups',
    defaultText: 'none',
  },
  url: { env: 'ATHANOR_URL', kind: 'string', description: 'server URL the CLI and compute services call' },
  id: {
    env: 'ATHANOR_ID',
    kind: 'string',
    description: 'user identity the CLI calls the API as',
    defaultText: 'none',
  },
  key: {
    env: 'ATHANOR_KEY',
    kind: 'string',
    secret: true,
    description: 'its key (or ATHANOR_KEY_FILE)',
    defaultText: 'none',
  },
  computeId: {
    env: 'ATHANOR_COMPUTE_ID',
    kind: 'string',
    description: "compute identity of 'compute run'",
    defaultText: 'ATHANOR_ID',
  },
  computeKey: {
    env: 'ATHANOR_COMPUTE_KEY',
    kind: 'string',
    secret: true,
    description: 'its key (or ATHANOR_COMPUTE_KEY_FILE)',
    defaultText: 'ATHANOR_KEY',
  },
  consolePath: {
    env: 'ATHANOR_CONSOLE_PATH',
    kind: 'string',
    description: "URL path of the web console, or 'off' to serve none",
  },
  maxJsonDepth: {
    env: 'ATHANOR_MAX_JSON_DEPTH',
    kind: 'integer',
    description: 'deepest nesting of arrays and objects a JSON request body may hold',
  },
  maxNetworkTransformations: {
    env: 'ATHANOR_MAX_NETWORK_TRANSFORMATIONS',
    kind: 'integer',
    description: 'most transformations one network may hold',
  },
  maxInputsBytes: {
    env: 'ATHANOR_MAX_INPUTS_BYTES',
    kind: 'integer',
    description: "largest canonical JSON of one transformation's inputs, in bytes",
  },
  inlineResultMaxBytes: {
    env: 'ATHANOR_INLINE_RESULT_MAX_BYTES',
    kind: 'integer',
    description:
      'successful results up to this size (sent whole, at most 1 MiB) are stored in their database row instead of as a blob (0: every result is a blob)',
  },
  presignDownloadsSeconds: {
    env: 'ATHANOR_PRESIGN_DOWNLOADS_SECONDS',
    kind: 'integer',
    description:
      'with an s3:// object store, result downloads redirect to a presigned URL valid this long (0: stream through the API)',
  },
} as const satisfies Record<string, SettingSpec>;

/** The defaults, written once: `resolveConfig` applies them and `--help` prints them. */
export const configDefaults = {
  dataDir: './athanor-data',
  busyTimeoutMs: 10_000,
  lockTimeoutMs: 60_000,
  host: '127.0.0.1',
  port: 8080,
  tokenTtlSeconds: 1800,
  bodyLimitBytes: 16 * 1024 * 1024,
  tokenRateLimit: 60,
  leaseTtlMs: 120_000,
  registrationTtlMs: 300_000,
  sweepIntervalMs: 10_000,
  maxJsonDepth: 64,
  maxNetworkTransformations: 100_000,
  maxInputsBytes: 1024 * 1024,
  inlineResultMaxBytes: 64 * 1024,
  presignDownloadsSeconds: 0,
  shutdownTimeoutMs: 25_000,
  logLevel: 'info',
  trustProxy: false,
  url: 'http://127.0.0.1:8080',
  consolePath: '/console',
} as const satisfies Partial<Record<string, string | number | boolean>>;

/** A setting's default as `--help` shows it. */
export function defaultText(name: SettingName): string {
  const spec: SettingSpec = settingSpecs[name];
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = (configDefaults as Partial<Record<SettingName, string | number | boolean>>)[name];
  return typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
}

export type SettingName = keyof typeof settingSpecs;

/** The resolved configuration: one frozen object, read once per process. Defaults: `configDefaults`. */
export interface Config {
  /** Data directory, absolute. */
  readonly dataDir: string;
  /** State store URL; default `sqlite:<dataDir>/athanor.db`. */
  readonly databaseUrl: string;
  /** Object store URL; default `file:<dataDir>/objects`. */
  readonly objectsUrl: string;
  /** SQLite busy timeout in milliseconds. */
  readonly busyTimeoutMs: number;
  /** Migration lock wait in milliseconds. */
  readonly lockTimeoutMs: number;
  /** Server listen address. */
  readonly host: string;
  /** Server port. */
  readonly port: number;
  /** API token lifetime in seconds. */
  readonly tokenTtlSeconds: number;
  /** Largest JSON request body in bytes. */
  readonly bodyLimitBytes: number;
  /** Token requests per minute per client address. */
  readonly tokenRateLimit: number;
  /** Claim lifetime without a heartbeat, in milliseconds. */
  readonly leaseTtlMs: number;
  /** Compute service registration lifetime without a heartbeat, in milliseconds. */
  readonly registrationTtlMs: number;
  /** Interval of the lease and registration sweeper, in milliseconds. */
  readonly sweepIntervalMs: number;
  /** URL path of the web console; undefined when set to `off`. */
  readonly consolePath: string | undefined;
  /** Deepest nesting of arrays and objects in a JSON request body; default 64. */
  readonly maxJsonDepth: number;
  /** Most transformations in one network; default 100000. */
  readonly maxNetworkTransformations: number;
  /** Largest canonical JSON of one transformation's inputs, in bytes; default 1 MiB. */
  readonly maxInputsBytes: number;
  /** Largest successful result stored in its database row instead of as a blob, in bytes; default 64 KiB. */
  readonly inlineResultMaxBytes: number;
  /** With an S3 object store, how long a presigned result download URL lasts; 0 (default) streams through the API. */
  readonly presignDownloadsSeconds: number;
  /** Readiness-off delay before the listener closes on SIGTERM; undefined: 5000 for serve, 0 for up. */
  readonly shutdownDelayMs: number | undefined;
  /** From the first SIGTERM to a forced exit, in milliseconds. */
  readonly shutdownTimeoutMs: number;
  /** Server log level (pino). */
  readonly logLevel: string;
  /** Whether client addresses come from `X-Forwarded-For`. */
  readonly trustProxy: boolean;
  /** JWT signing secret; when absent, one is generated once and kept in the state store. */
  readonly jwtSecret: string | undefined;
  /** Backup target URL; default `file:<dataDir>/backups`. */
  readonly backupTarget: string;
  /** Backup schedule as written (cron or `off`); the profile decides when absent. */
  readonly backupSchedule: string | undefined;
  /** Restore drill schedule as written (cron or `off`). */
  readonly backupDrillSchedule: string | undefined;
  /** Retention after scheduled backups as written (`hourly=24,daily=7` or `off`). */
  readonly backupKeep: string | undefined;
  /** age recipients new backups are encrypted to, as written (comma separated); none: unencrypted. */
  readonly backupAgeRecipients: string | undefined;
  /** Passphrase new backups are encrypted with (instead of recipients); it also opens backups. */
  readonly backupPassphrase: string | undefined;
  /** File of age identities that open encrypted backups. */
  readonly backupAgeIdentityFile: string | undefined;
  /** Server URL of the user client and compute services. */
  readonly url: string;
  /** User identity of the CLI's API calls. */
  readonly id: string | undefined;
  /** Its key. */
  readonly key: string | undefined;
  /** Compute identity of `compute run`; default `id`. */
  readonly computeId: string | undefined;
  /** Its key; default `key`. */
  readonly computeKey: string | undefined;
  /**
   * The signing secret being rotated out: its tokens are still accepted, nothing new is signed
   * with it. Only with `jwtSecret`.
   */
  readonly jwtPreviousSecret: string | undefined;
  /** Bearer token that unlocks the per-scope series of `/metrics`; without it `/metrics` names no scope. */
  readonly metricsToken: string | undefined;
  /** The config file that was read, if any. */
  readonly configFile: string | undefined;
}

export type ConfigFlags = Partial<Record<SettingName, string | number | boolean | undefined>> & {
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

  const pick = (name: SettingName): string | number | boolean | undefined => {
    const spec: SettingSpec = settingSpecs[name];
    const raw =
      flags[name] ??
      (spec.secret
        ? readSecretSetting(spec.env, env, { exact: spec.exact === true })
        : spec.exact
          ? env[spec.env]
          : nonEmpty(env[spec.env])) ??
      fileValues[name];
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
    if (spec.kind === 'boolean') {
      if (typeof raw === 'boolean') return raw;
      const word = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(word)) return true;
      if (['0', 'false', 'no', 'off'].includes(word)) return false;
      throw new AthanorError('invalid_config', `${spec.env} (${name}) must be 1 or 0, got '${raw}'`);
    }
    return String(raw);
  };
  const text = (name: SettingName) => pick(name) as string | undefined;
  const whole = (name: keyof typeof configDefaults & SettingName) =>
    (pick(name) as number | undefined) ?? (configDefaults[name] as number);

  const dataDir = path.resolve(cwd, text('dataDir') ?? configDefaults.dataDir);
  // A URL carrying a password arrives as a file from container secrets and systemd credentials
  // (ATHANOR_DATABASE_URL_FILE); unlike a secret it may also sit, without a password, in the
  // config file.
  const databaseUrlFromEnv =
    flags.databaseUrl === undefined ? readSecretSetting('ATHANOR_DATABASE_URL', env) : undefined;
  const databaseUrl = normalizeDatabaseUrl(
    databaseUrlFromEnv ?? text('databaseUrl') ?? sqliteDatabaseUrl(path.join(dataDir, 'athanor.db')),
    cwd,
  );
  return Object.freeze({
    dataDir,
    databaseUrl,
    objectsUrl: text('objectsUrl') ?? `file:${path.join(dataDir, 'objects')}`,
    busyTimeoutMs: whole('busyTimeoutMs'),
    lockTimeoutMs: whole('lockTimeoutMs'),
    host: text('host') ?? configDefaults.host,
    port: whole('port'),
    tokenTtlSeconds: whole('tokenTtlSeconds'),
    bodyLimitBytes: whole('bodyLimitBytes'),
    tokenRateLimit: whole('tokenRateLimit'),
    leaseTtlMs: whole('leaseTtlMs'),
    registrationTtlMs: whole('registrationTtlMs'),
    sweepIntervalMs: whole('sweepIntervalMs'),
    maxJsonDepth: whole('maxJsonDepth'),
    maxNetworkTransformations: whole('maxNetworkTransformations'),
    maxInputsBytes: whole('maxInputsBytes'),
    inlineResultMaxBytes: whole('inlineResultMaxBytes'),
    presignDownloadsSeconds: whole('presignDownloadsSeconds'),
    shutdownDelayMs: pick('shutdownDelayMs') as number | undefined,
    shutdownTimeoutMs: whole('shutdownTimeoutMs'),
    logLevel: text('logLevel') ?? configDefaults.logLevel,
    trustProxy: (pick('trustProxy') as boolean | undefined) ?? configDefaults.trustProxy,
    jwtSecret: text('jwtSecret'),
    backupTarget: text('backupTarget') ?? `file:${path.join(dataDir, 'backups')}`,
    backupSchedule: text('backupSchedule'),
    backupDrillSchedule: text('backupDrillSchedule'),
    backupKeep: text('backupKeep'),
    backupAgeRecipients: text('backupAgeRecipients'),
    backupPassphrase: text('backupPassphrase'),
    backupAgeIdentityFile: text('backupAgeIdentityFile'),
    url: text('url') ?? configDefaults.url,
    id: text('id'),
    key: text('key'),
    computeId: text('computeId'),
    computeKey: text('computeKey'),
    jwtPreviousSecret: text('jwtPreviousSecret'),
    metricsToken: text('metricsToken'),
    consolePath: parseConsolePath(text('consolePath') ?? configDefaults.consolePath),
    configFile,
  });
}

/**
 * A secret from `NAME`, else from the file named by `NAME_FILE` (trimmed); undefined when neither
 * is set. The one reader of `*_FILE` variables: a file that cannot be read is `invalid_config`.
 */
export function readSecretSetting(
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: { readonly exact?: boolean } = {},
): string | undefined {
  const direct = options.exact ? env[name] : nonEmpty(env[name]);
  if (direct !== undefined) return direct;
  const file = nonEmpty(env[`${name}_FILE`]);
  if (file === undefined) return undefined;
  try {
    const content = readFileSync(file, 'utf8');
    return options.exact ? content.replace(/\r?\n$/, '') : content.trim();
  } catch (cause) {
    throw new AthanorError(
      'invalid_config',
      `cannot read ${name}_FILE (${file}): ${(cause as Error).message}. Point it at a readable file, or set ${name}`,
      { cause },
    );
  }
}

/** `off` turns the console off; otherwise a path like `/console` or `/ops/console`. */
function parseConsolePath(text: string): string | undefined {
  if (text.trim().toLowerCase() === 'off') return undefined;
  const trimmed = text.length > 1 ? text.replace(/\/+$/, '') : text;
  if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(trimmed) || /\/\.\.?(\/|$)/.test(trimmed)) {
    throw new AthanorError(
      'invalid_config',
      `ATHANOR_CONSOLE_PATH (consolePath) must be a path like /console, or off; got '${text}'`,
    );
  }
  return trimmed;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function readConfigFile(file: string): Partial<Record<SettingName, string | number | boolean>> {
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
  const specs: Readonly<Record<string, SettingSpec>> = settingSpecs;
  const known = Object.keys(specs).filter((name) => !specs[name]?.secret);
  for (const key of Object.keys(parsed)) {
    const spec = specs[key];
    if (spec?.secret) {
      throw new AthanorError(
        'invalid_config',
        `config file ${file}: '${key}' is a secret and is read only from ${spec.env} or ${spec.env}_FILE; ` +
          'remove it from the file',
      );
    }
    if (!spec) {
      throw new AthanorError(
        'invalid_config',
        `config file ${file}: unknown setting '${key}'; known settings: ${known.join(', ')}`,
      );
    }
  }
  return parsed as Partial<Record<SettingName, string | number | boolean>>;
}

/** Relative SQLite paths are resolved against the working directory so every process agrees. */
function normalizeDatabaseUrl(url: string, cwd: string): string {
  const location = parseDatabaseUrl(url);
  if (location?.backend === 'sqlite') {
    if (location.file === ':memory:') return url;
    return sqliteDatabaseUrl(path.resolve(cwd, location.file));
  }
  if (location?.backend === 'postgres') return url;
  throw new AthanorError(
    'invalid_config',
    `database URL '${redactUrl(url)}' is not supported: use sqlite:<path> or postgres://user:pass@host:port/db`,
  );
}

/** A URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}
