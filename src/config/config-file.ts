import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AthanorError } from '../domain/errors.js';
import type { SettingName, SettingSpec } from './settings.js';
import { settingSpecs } from './settings.js';

/** What a config file sets, by setting name. */
export type ConfigFileValues = Partial<Record<SettingName, string | number | boolean>>;

const defaultConfigFile = 'athanor.config.json';

/**
 * The config file to read: `--config`, else `ATHANOR_CONFIG`, else `./athanor.config.json` when
 * present; undefined when there is none.
 */
export function findConfigFile(explicit: string | undefined, cwd: string): string | undefined {
  return explicit ?? (existsSync(path.join(cwd, defaultConfigFile)) ? defaultConfigFile : undefined);
}

/**
 * Reads a config file: one JSON object of settings by name. An unknown name or a secret is
 * refused (`invalid_config`), naming the known settings or where the secret is read from.
 */
export function readConfigFile(file: string): ConfigFileValues {
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
  return parsed as ConfigFileValues;
}
