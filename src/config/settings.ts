/**
 * Every setting of Athanor, in one table: its `ATHANOR_*` variable, kind, description and
 * default. `resolveConfig` reads them (flag > variable > config file > default), `--help` lists
 * them, the config file accepts them (secrets excepted). Adding a setting is one entry here; see
 * "Adding a setting" in docs/architecture.md.
 */

/** One setting: where it comes from and what it defaults to. */
export interface SettingSpec {
  readonly env: string;
  /** What it is; `--help` adds the default. */
  readonly description: string;
  readonly kind: 'string' | 'integer' | 'boolean';
  /** The value when nothing sets it; without one (and without a rule in `resolveConfig`) it is undefined. */
  readonly default?: string | number | boolean;
  /** How the default reads in `--help` when it is not `default` (it depends on other settings). */
  readonly defaultText?: string;
  /**
   * A secret: read from `ATHANOR_X` or from the file named by `ATHANOR_X_FILE`, never from the
   * config file, never echoed.
   */
  readonly secret?: true;
  /** Not a secret, but also read from the file named by `ATHANOR_X_FILE` (after `ATHANOR_X`). */
  readonly readsFile?: true;
  /**
   * Kept exactly as given: an empty value is a value (its reader refuses it) rather than unset,
   * and a `_FILE` loses only its final newline. For encryption keys, where "set to nothing" must
   * never quietly mean "no encryption".
   */
  readonly exact?: true;
}

export const settingSpecs = {
  dataDir: {
    env: 'ATHANOR_DATA_DIR',
    kind: 'string',
    description: 'data directory',
    default: './athanor-data',
  },
  databaseUrl: {
    env: 'ATHANOR_DATABASE_URL',
    kind: 'string',
    description: 'sqlite:<path> or postgres://user:pass@host:port/db (or ATHANOR_DATABASE_URL_FILE)',
    defaultText: 'sqlite:<data dir>/athanor.db',
    // A URL carrying a password arrives as a file from container secrets and systemd credentials;
    // unlike a secret it may also sit, without a password, in the config file.
    readsFile: true,
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
    default: 10_000,
  },
  lockTimeoutMs: {
    env: 'ATHANOR_LOCK_TIMEOUT_MS',
    kind: 'integer',
    description: 'how long a migration waits for the migration lock',
    default: 60_000,
  },
  host: {
    env: 'ATHANOR_HOST',
    kind: 'string',
    description: 'address the server listens on',
    default: '127.0.0.1',
  },
  port: { env: 'ATHANOR_PORT', kind: 'integer', description: 'port the server listens on', default: 8080 },
  tokenTtlSeconds: {
    env: 'ATHANOR_TOKEN_TTL_SECONDS',
    kind: 'integer',
    description: 'lifetime of API tokens',
    default: 1800,
  },
  bodyLimitBytes: {
    env: 'ATHANOR_BODY_LIMIT_BYTES',
    kind: 'integer',
    description: 'largest JSON request body',
    default: 16 * 1024 * 1024,
  },
  tokenRateLimit: {
    env: 'ATHANOR_TOKEN_RATE_LIMIT',
    kind: 'integer',
    description: 'token requests per minute per client address',
    default: 60,
  },
  leaseTtlMs: {
    env: 'ATHANOR_LEASE_TTL_MS',
    kind: 'integer',
    description: 'how long a claim lasts without a heartbeat',
    default: 120_000,
  },
  registrationTtlMs: {
    env: 'ATHANOR_REGISTRATION_TTL_MS',
    kind: 'integer',
    description: 'how long a compute service registration lasts without a heartbeat',
    default: 300_000,
  },
  sweepIntervalMs: {
    env: 'ATHANOR_SWEEP_INTERVAL_MS',
    kind: 'integer',
    description: 'how often the server expires stale leases and registrations',
    default: 10_000,
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
    default: 25_000,
  },
  logLevel: {
    env: 'ATHANOR_LOG_LEVEL',
    kind: 'string',
    description: 'server log level: fatal, error, warn, info, debug, trace or silent',
    default: 'info',
  },
  trustProxy: {
    env: 'ATHANOR_TRUST_PROXY',
    kind: 'boolean',
    description: 'take client addresses from X-Forwarded-For (behind a reverse proxy): 1 or 0',
    default: false,
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
  pitr: {
    env: 'ATHANOR_PITR',
    kind: 'boolean',
    description:
      'continuous replication of a SQLite database to the backup target, for point-in-time restore: 1 or 0',
    defaultText: 'on wherever scheduled backups are',
  },
  pitrWindowHours: {
    env: 'ATHANOR_PITR_WINDOW_HOURS',
    kind: 'integer',
    description: 'how far back a point-in-time restore can go; objects gc keeps blobs this long',
    default: 24,
  },
  pgbackrestConfig: {
    env: 'ATHANOR_PGBACKREST_CONFIG',
    kind: 'string',
    description: "pgBackRest configuration file that 'backup pitr setup' writes for PostgreSQL",
    defaultText: '<data dir>/pgbackrest/pgbackrest.conf',
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
  backupKeepLast: {
    env: 'ATHANOR_BACKUP_KEEP_LAST',
    kind: 'integer',
    description: 'retention rule: keep the newest N backups; added to ATHANOR_BACKUP_KEEP',
    defaultText: 'none',
  },
  backupKeepHourly: {
    env: 'ATHANOR_BACKUP_KEEP_HOURLY',
    kind: 'integer',
    description:
      'retention rule: keep the last backup of each of the last N hours; added to ATHANOR_BACKUP_KEEP',
    defaultText: 'none',
  },
  backupKeepDaily: {
    env: 'ATHANOR_BACKUP_KEEP_DAILY',
    kind: 'integer',
    description:
      'retention rule: keep the last backup of each of the last N days; added to ATHANOR_BACKUP_KEEP',
    defaultText: 'none',
  },
  backupKeepWeekly: {
    env: 'ATHANOR_BACKUP_KEEP_WEEKLY',
    kind: 'integer',
    description:
      'retention rule: keep the last backup of each of the last N weeks; added to ATHANOR_BACKUP_KEEP',
    defaultText: 'none',
  },
  backupKeepMonthly: {
    env: 'ATHANOR_BACKUP_KEEP_MONTHLY',
    kind: 'integer',
    description:
      'retention rule: keep the last backup of each of the last N months; added to ATHANOR_BACKUP_KEEP',
    defaultText: 'none',
  },
  backupKeepYearly: {
    env: 'ATHANOR_BACKUP_KEEP_YEARLY',
    kind: 'integer',
    description:
      'retention rule: keep the last backup of each of the last N years; added to ATHANOR_BACKUP_KEEP',
    defaultText: 'none',
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
  url: {
    env: 'ATHANOR_URL',
    kind: 'string',
    description: 'server URL the CLI and compute services call',
    default: 'http://127.0.0.1:8080',
  },
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
  managerIntervalMs: {
    env: 'ATHANOR_MANAGER_INTERVAL_MS',
    kind: 'integer',
    description: "how often 'compute manager run' asks the server for demand and acts on it",
    default: 5_000,
  },
  managerRegisterTimeoutMs: {
    env: 'ATHANOR_MANAGER_REGISTER_TIMEOUT_MS',
    kind: 'integer',
    description: 'a service a compute manager started that has not registered after this long is cancelled',
    default: 120_000,
  },
  managerStateDir: {
    env: 'ATHANOR_MANAGER_STATE_DIR',
    kind: 'string',
    description: "where the local driver of 'compute manager run' keeps its services' pid files and logs",
    defaultText: '<data dir>/managers',
  },
  eventRetentionHours: {
    env: 'ATHANOR_EVENT_RETENTION_HOURS',
    kind: 'integer',
    description: 'how long the event log (and the webhook delivery log) keeps an event, in hours',
    default: 168,
  },
  eventsIntervalMs: {
    env: 'ATHANOR_EVENTS_INTERVAL_MS',
    kind: 'integer',
    description: 'how often the server numbers new events, delivers webhooks and runs strategies (0: never)',
    default: 200,
  },
  webhookAllowPrivate: {
    env: 'ATHANOR_WEBHOOK_ALLOW_PRIVATE',
    kind: 'boolean',
    description: 'let webhooks deliver to loopback and private addresses: 1 or 0',
    default: false,
  },
  webhookTimeoutMs: {
    env: 'ATHANOR_WEBHOOK_TIMEOUT_MS',
    kind: 'integer',
    description: 'how long one webhook delivery may take',
    default: 10_000,
  },
  webhookMaxResponseBytes: {
    env: 'ATHANOR_WEBHOOK_MAX_RESPONSE_BYTES',
    kind: 'integer',
    description: "most bytes of a webhook receiver's answer that are read",
    default: 65_536,
  },
  webhookRetryBaseMs: {
    env: 'ATHANOR_WEBHOOK_RETRY_BASE_MS',
    kind: 'integer',
    description: 'first wait before a failed webhook delivery is tried again (doubling, with jitter)',
    default: 1000,
  },
  webhookRetryMaxMs: {
    env: 'ATHANOR_WEBHOOK_RETRY_MAX_MS',
    kind: 'integer',
    description: 'longest wait between webhook delivery attempts',
    default: 300_000,
  },
  webhookRetryForMs: {
    env: 'ATHANOR_WEBHOOK_RETRY_FOR_MS',
    kind: 'integer',
    description: 'a webhook failing this long is disabled (with an audit entry)',
    default: 86_400_000,
  },
  strategyModules: {
    env: 'ATHANOR_STRATEGY_MODULES',
    kind: 'string',
    description: "modules exporting more strategies ('strategies' array), comma separated",
    defaultText: 'none: the built-in strategies only',
  },
  strategyDeadlineMs: {
    env: 'ATHANOR_STRATEGY_DEADLINE_MS',
    kind: 'integer',
    description: 'how long one strategy run may take to decide before it is stopped',
    default: 5000,
  },
  consolePath: {
    env: 'ATHANOR_CONSOLE_PATH',
    kind: 'string',
    description: "URL path of the web console, or 'off' to serve none",
    default: '/console',
  },
  maxJsonDepth: {
    env: 'ATHANOR_MAX_JSON_DEPTH',
    kind: 'integer',
    description: 'deepest nesting of arrays and objects a JSON request body may hold',
    default: 64,
  },
  maxNetworkTransformations: {
    env: 'ATHANOR_MAX_NETWORK_TRANSFORMATIONS',
    kind: 'integer',
    description: 'most transformations one network may hold',
    default: 100_000,
  },
  maxInputsBytes: {
    env: 'ATHANOR_MAX_INPUTS_BYTES',
    kind: 'integer',
    description: "largest canonical JSON of one transformation's inputs, in bytes",
    default: 1024 * 1024,
  },
  inlineResultMaxBytes: {
    env: 'ATHANOR_INLINE_RESULT_MAX_BYTES',
    kind: 'integer',
    description:
      'successful results up to this size (sent whole, at most 1 MiB) are stored in their database row instead of as a blob (0: every result is a blob)',
    default: 64 * 1024,
  },
  presignDownloadsSeconds: {
    env: 'ATHANOR_PRESIGN_DOWNLOADS_SECONDS',
    kind: 'integer',
    description:
      'with an s3:// object store, result downloads redirect to a presigned URL valid this long (0: stream through the API)',
    default: 0,
  },
  deployBlueUrl: {
    env: 'ATHANOR_DEPLOY_BLUE_URL',
    kind: 'string',
    description: "where the blue colour's athanor serve listens (deploy)",
    default: 'http://127.0.0.1:8081',
  },
  deployGreenUrl: {
    env: 'ATHANOR_DEPLOY_GREEN_URL',
    kind: 'string',
    description: "where the green colour's athanor serve listens (deploy)",
    default: 'http://127.0.0.1:8082',
  },
  deployUpstreamFile: {
    env: 'ATHANOR_DEPLOY_UPSTREAM_FILE',
    kind: 'string',
    description: 'the nginx upstream file deploy switch rewrites',
    default: '/etc/nginx/conf.d/athanor-upstream.conf',
  },
  deployTestCommand: {
    env: 'ATHANOR_DEPLOY_TEST_COMMAND',
    kind: 'string',
    description: "checks the proxy's configuration before a reload (deploy)",
    default: 'nginx -t',
  },
  deployReloadCommand: {
    env: 'ATHANOR_DEPLOY_RELOAD_COMMAND',
    kind: 'string',
    description: 'makes the proxy read its configuration again without dropping connections (deploy)',
    default: 'nginx -s reload',
  },
  deployDrainTimeoutMs: {
    env: 'ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS',
    kind: 'integer',
    description: "how long deploy switch waits for the retired colour's requests to finish",
    default: 90_000,
  },
  deployProxyPidFile: {
    env: 'ATHANOR_DEPLOY_PROXY_PID_FILE',
    kind: 'string',
    description: "nginx's pid file: deploy switch waits for the workers it ran before the reload to exit",
    default: '/run/nginx.pid',
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof settingSpecs;

interface KindValue {
  readonly string: string;
  readonly integer: number;
  readonly boolean: boolean;
}

/** Each setting's value as read: its kind's type, or undefined when it has no default. */
export type SettingValues = {
  readonly [K in SettingName]: (typeof settingSpecs)[K] extends { readonly default: unknown }
    ? KindValue[(typeof settingSpecs)[K]['kind']]
    : KindValue[(typeof settingSpecs)[K]['kind']] | undefined;
};

type Defaults = {
  readonly [
    K in SettingName as (typeof settingSpecs)[K] extends { readonly default: unknown } ? K : never
  ]: (typeof settingSpecs)[K] extends { readonly default: infer D } ? D : never;
};

/** Every setting's default, by name, as the table writes it. */
export const configDefaults = Object.freeze(
  Object.fromEntries(
    Object.entries(settingSpecs as Readonly<Record<string, SettingSpec>>).flatMap(([name, spec]) =>
      spec.default === undefined ? [] : [[name, spec.default]],
    ),
  ),
) as Defaults;

/** A setting's default as `--help` shows it. */
export function defaultText(name: SettingName): string {
  const spec: SettingSpec = settingSpecs[name];
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = spec.default;
  return typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
}

/**
 * The variables that are not settings (no flag, no config file entry), listed by `--help` beside
 * them and read through `config/environment.ts`.
 */
export const processVariables = {
  config: { env: 'ATHANOR_CONFIG', description: 'config file (default ./athanor.config.json when present)' },
  debug: { env: 'ATHANOR_DEBUG', description: 'print stack traces when set to 1' },
  noColor: { env: 'NO_COLOR', description: 'plain output' },
} as const satisfies Record<string, { readonly env: string; readonly description: string }>;
