import { statSync } from 'node:fs';
import path from 'node:path';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import type { BackupTargetChoice } from './backup-env.js';
import { backupEnv } from './backup-env.js';
import { asTargetError } from './target-unavailable.js';

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
  return reportingAsBackupTarget(target, choice);
}

/** The result store's codes for a failing disk or bucket, and `internal` for the rest of them. */
const storeFailureCodes: ReadonlySet<string> = new Set(['objects_unavailable', 'internal']);

/**
 * The target with its I/O failures (a full disk, a read-only or missing directory, a refused
 * bucket) reported as `backup_target_unavailable` naming the setting, not as the result store's
 * `objects_unavailable` or as `internal`.
 */
function reportingAsBackupTarget(target: ObjectStore, choice: BackupTargetChoice): ObjectStore {
  const translate = (error: unknown): never => {
    if (!isAthanorError(error) || !storeFailureCodes.has(error.code)) throw error;
    // An outage gets the writer's wording (nothing was published); a refused write keeps its own.
    const reason = (asTargetError(error) as Error).message;
    throw new AthanorError(
      'backup_target_unavailable',
      `${reason} (the backup target, from ${settingText(choice)})`,
      { cause: error },
    );
  };
  return new Proxy(target, {
    get(store, property) {
      const value: unknown = Reflect.get(store, property, store);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(store, args);
        if (result instanceof Promise) return result.catch(translate);
        if (result && typeof result === 'object' && Symbol.asyncIterator in result) {
          return (async function* () {
            try {
              yield* result as AsyncIterable<unknown>;
            } catch (error) {
              translate(error);
            }
          })();
        }
        return result;
      };
    },
  });
}
