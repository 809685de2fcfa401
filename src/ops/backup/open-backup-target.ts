import { statSync } from 'node:fs';
import path from 'node:path';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import type { BackupTargetChoice } from './backup-env.js';
import { backupEnv } from './backup-env.js';

const settingText = (choice: BackupTargetChoice) =>
  choice.setting === 'default'
    ? `the default backup target (set --target or ${backupEnv.target} to choose another)`
    : choice.setting;

const isDirectory = (dir: string) => {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
};

/**
 * Opens a backup target, refusing what is surely a mistake: a URL that is not `file:` or
 * `s3://`, and, for writing, a `file:` directory whose parent does not exist (a typo three levels
 * deep would otherwise be created and the backup land there). Errors name the setting the URL
 * came from. Reading a target that does not exist is no error: it holds no backups.
 */
export function openBackupTarget(
  choice: BackupTargetChoice,
  options: { forWriting?: boolean } = {},
): ObjectStore {
  let target: ObjectStore;
  try {
    target = openObjectStore(choice.url);
  } catch (error) {
    if (!isAthanorError(error)) throw error;
    throw new AthanorError(
      'invalid_argument',
      `backup target '${choice.url}' (from ${settingText(choice)}) is not a backup target URL: use file:<dir> or s3://bucket/prefix`,
      { cause: error },
    );
  }
  if (options.forWriting && choice.url.startsWith('file:') && choice.setting !== 'default') {
    const dir = target.url.startsWith('file:') ? target.url.slice('file:'.length) : choice.url;
    const parent = path.dirname(dir);
    if (!isDirectory(dir) && !isDirectory(parent)) {
      throw new AthanorError(
        'invalid_argument',
        `backup target '${choice.url}' (from ${settingText(choice)}): its parent ${parent} is not an existing directory; ` +
          'create it first, or fix the URL',
      );
    }
  }
  return target;
}
