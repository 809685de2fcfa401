import path from 'node:path';
import type { Config } from '../../config/resolve-config.js';
import { settingSpecs } from '../../config/resolve-config.js';
/** The environment variables of backups, in one place for the code, `--help` and the docs. */
export const backupEnv = {
  /** Default backup target URL. */
  target: settingSpecs.backupTarget.env,
  /** age recipients (`age1…`, comma separated) that new backups are encrypted to. */
  recipients: settingSpecs.backupAgeRecipients.env,
  /** A passphrase that new backups are encrypted with (instead of recipients). */
  passphrase: settingSpecs.backupPassphrase.env,
  /** A file holding that passphrase. */
  passphraseFile: `${settingSpecs.backupPassphrase.env}_FILE`,
  /** A file of age identities (`AGE-SECRET-KEY-1…`) that open encrypted backups. */
  identityFile: settingSpecs.backupAgeIdentityFile.env,
} as const;

/** A backup target URL and the setting it came from, so an error can name what the user set. */
export interface BackupTargetChoice {
  readonly url: string;
  /** The flag, the setting (variable or config file), or `default` (`file:<data dir>/backups`). */
  readonly setting: string;
}

/** The backup target: the URL given (a `--target` flag), else the `backupTarget` setting, with where it came from. */
export function chooseBackupTarget(
  config: Pick<Config, 'backupTarget' | 'dataDir'>,
  given?: string | undefined,
  flag = '--target',
): BackupTargetChoice {
  if (given !== undefined) return { url: given, setting: flag };
  const isDefault = config.backupTarget === `file:${path.join(config.dataDir, 'backups')}`;
  return {
    url: config.backupTarget,
    setting: isDefault ? 'default' : `${backupEnv.target} (or "backupTarget" in the config file)`,
  };
}
