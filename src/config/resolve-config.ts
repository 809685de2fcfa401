import { readFileSync } from 'node:fs';
import path from 'node:path';
import { absoluteDatabaseUrl, redactUrl, sqliteDatabaseUrl } from '../domain/database-url.js';
import { AthanorError } from '../domain/errors.js';
import { findConfigFile, readConfigFile } from './config-file.js';
import type { SettingName, SettingSpec, SettingValues } from './settings.js';
import { settingSpecs } from './settings.js';

export type { SettingName, SettingSpec } from './settings.js';
export { configDefaults, defaultText, settingSpecs } from './settings.js';

/** Settings whose value is worked out beyond "as read, else the default". */
interface DerivedSettings {
  /** Data directory, absolute. */
  readonly dataDir: string;
  /** State store URL, a relative SQLite path made absolute; default `sqlite:<dataDir>/athanor.db`. */
  readonly databaseUrl: string;
  /** Object store URL; default `file:<dataDir>/objects`. */
  readonly objectsUrl: string;
  /** Backup target URL; default `file:<dataDir>/backups`. */
  readonly backupTarget: string;
  /** pgBackRest configuration file; default `<dataDir>/pgbackrest/pgbackrest.conf`. */
  readonly pgbackrestConfig: string;
  /** The local manager driver's pid files and logs; default `<dataDir>/managers`. */
  readonly managerStateDir: string;
  /** URL path of the web console; undefined when set to `off`. */
  readonly consolePath: string | undefined;
  /** Modules with more strategies, from the comma-separated setting; default none. */
  readonly strategyModules: readonly string[];
  /** The config file that was read, if any. */
  readonly configFile: string | undefined;
}

/**
 * The resolved configuration: one frozen object, read once per process. Each field is the setting
 * of the same name in `settingSpecs`, where its variable, meaning and default are written.
 */
export type Config = Omit<SettingValues, keyof DerivedSettings> & DerivedSettings;

export type ConfigFlags = Partial<Record<SettingName, string | number | boolean | undefined>> & {
  readonly config?: string | undefined;
};

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Resolves configuration: flag > `ATHANOR_*` environment > config file > default.
 * The config file is `--config`, else `ATHANOR_CONFIG`, else `./athanor.config.json` if present.
 */
export function resolveConfig(
  flags: ConfigFlags = {},
  env: Env = process.env,
  cwd: string = process.cwd(),
): Config {
  const configFile = findConfigFile(flags.config ?? env.ATHANOR_CONFIG, cwd);
  const fileValues = configFile === undefined ? {} : readConfigFile(path.resolve(cwd, configFile));

  const values: Record<string, string | number | boolean | undefined> = {};
  for (const name of Object.keys(settingSpecs) as SettingName[]) {
    const spec: SettingSpec = settingSpecs[name];
    values[name] =
      typed(name, spec, flags[name] ?? fromEnvironment(spec, env) ?? fileValues[name]) ?? spec.default;
  }
  const read = values as SettingValues;
  const dataDir = path.resolve(cwd, read.dataDir);
  return Object.freeze({
    ...read,
    dataDir,
    databaseUrl: normalizeDatabaseUrl(
      read.databaseUrl ?? sqliteDatabaseUrl(path.join(dataDir, 'athanor.db')),
      cwd,
    ),
    objectsUrl: read.objectsUrl ?? `file:${path.join(dataDir, 'objects')}`,
    backupTarget: read.backupTarget ?? `file:${path.join(dataDir, 'backups')}`,
    managerStateDir: read.managerStateDir ?? path.join(dataDir, 'managers'),
    pgbackrestConfig: path.resolve(
      cwd,
      read.pgbackrestConfig ?? path.join(dataDir, 'pgbackrest', 'pgbackrest.conf'),
    ),
    consolePath: parseConsolePath(read.consolePath),
    strategyModules: Object.freeze(
      (read.strategyModules ?? '')
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean),
    ),
    configFile,
  });
}

/** A setting's variable as written: secrets and `readsFile` settings also from `_FILE`. */
function fromEnvironment(spec: SettingSpec, env: Env): string | undefined {
  if (spec.secret || spec.readsFile) return readSecretSetting(spec.env, env, { exact: spec.exact === true });
  return spec.exact ? env[spec.env] : nonEmpty(env[spec.env]);
}

/** A raw value as its setting's kind; throws `invalid_config` naming the variable. */
function typed(
  name: SettingName,
  spec: SettingSpec,
  raw: string | number | boolean | undefined,
): string | number | boolean | undefined {
  if (raw === undefined) return undefined;
  if (spec.kind === 'integer') {
    const value = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new AthanorError('invalid_config', `${spec.env} (${name}) must be a whole number, got '${raw}'`);
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
}

/**
 * A secret from `NAME`, else from the file named by `NAME_FILE` (trimmed); undefined when neither
 * is set. The one reader of `*_FILE` variables: a file that cannot be read is `invalid_config`.
 */
export function readSecretSetting(
  name: string,
  env: Env = process.env,
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

/** Relative SQLite paths are resolved against the working directory so every process agrees. */
function normalizeDatabaseUrl(url: string, cwd: string): string {
  const resolved = absoluteDatabaseUrl(url, cwd);
  if (resolved !== undefined) return resolved;
  throw new AthanorError(
    'invalid_config',
    `database URL '${redactUrl(url)}' is not supported: use sqlite:<path> or postgres://user:pass@host:port/db`,
  );
}
