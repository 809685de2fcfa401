import path from 'node:path';

/** The environment variables of backups, in one place for the code, `--help` and the docs. */
export const backupEnv = {
  /** Default backup target URL. */
  target: 'ATHANOR_BACKUP_TARGET',
  /** age recipients (`age1…`, comma separated) that new backups are encrypted to. */
  recipients: 'ATHANOR_BACKUP_AGE_RECIPIENTS',
  /** A passphrase that new backups are encrypted with (instead of recipients). */
  passphrase: 'ATHANOR_BACKUP_PASSPHRASE',
  /** A file holding that passphrase. */
  passphraseFile: 'ATHANOR_BACKUP_PASSPHRASE_FILE',
  /** A file of age identities (`AGE-SECRET-KEY-1…`) that open encrypted backups. */
  identityFile: 'ATHANOR_BACKUP_AGE_IDENTITY_FILE',
} as const;

/**
 * The backup target URL: the one given (a `--target` flag), else `ATHANOR_BACKUP_TARGET`, else
 * `file:<data dir>/backups`. The one place that default is written.
 */
export function backupTargetUrl(
  dataDir: string,
  given?: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const fromEnv = env[backupEnv.target];
  if (given !== undefined) return given;
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv;
  return `file:${path.join(dataDir, 'backups')}`;
}
