import type { Readable } from 'node:stream';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectInfo, ObjectStore } from '../../objects/object-store.js';
import type { OpenObjectStoreOptions } from '../../objects/open-object-store.js';
import { objectStoreScheme, objectStoreUrlForms } from '../../objects/open-object-store.js';
import type { BackupTargetChoice } from './backup-env.js';
import { backupEnv } from './backup-env.js';

/** The result store's codes for a failing disk or bucket, and `internal` for the rest of them. */
const storeFailureCodes: ReadonlySet<string> = new Set(['objects_unavailable', 'internal']);

const settingText = (setting: string) =>
  setting === 'default'
    ? `the default backup target (set --target or ${backupEnv.target} to choose another)`
    : setting;

/**
 * Where backups live: an object store opened once from a target choice, through the same scheme
 * registry as the result store (`objects/open-object-store.ts`), with its error mapping built in.
 * Its I/O failures (a full disk, a read-only or missing directory, a refused bucket) are
 * `backup_target_unavailable`, naming the setting the URL came from, so they are not mistaken for
 * the result store's `objects_unavailable`. It is an `ObjectStore`, so the backup code reads and
 * writes it like any other.
 */
export class BackupTarget implements ObjectStore {
  readonly url: string;
  /** The flag or setting the URL came from, or `default`; undefined for a store handed in whole. */
  readonly setting: string | undefined;
  readonly putMany?: ObjectStore['putMany'];
  readonly getSmall?: ObjectStore['getSmall'];
  readonly #store: ObjectStore;

  private constructor(store: ObjectStore, setting: string | undefined) {
    this.#store = store;
    this.url = store.url;
    this.setting = setting;
    const putMany = store.putMany?.bind(store);
    const getSmall = store.getSmall?.bind(store);
    if (putMany) this.putMany = (objects) => this.#call(() => putMany(objects));
    if (getSmall) this.getSmall = (key, maxBytes) => this.#call(() => getSmall(key, maxBytes));
  }

  /**
   * Opens the target a choice names, refusing what is surely a mistake: a URL no kind of store
   * takes, and, for writing, what its scheme says is one (a `file:` directory whose parent does
   * not exist). Errors name the setting the URL came from. Reading a target that does not exist
   * is no error: it holds no backups.
   */
  static open(
    choice: BackupTargetChoice,
    options: { readonly forWriting?: boolean } & OpenObjectStoreOptions = {},
  ): BackupTarget {
    const scheme = objectStoreScheme(choice.url);
    let store: ObjectStore;
    try {
      if (!scheme) throw new AthanorError('invalid_config', `no object store takes '${choice.url}'`);
      store = scheme.open(choice.url, options);
    } catch (error) {
      if (!isAthanorError(error)) throw error;
      throw new AthanorError(
        'invalid_argument',
        `backup target '${choice.url}' (from ${settingText(choice.setting)}) is not a backup target URL: use ${objectStoreUrlForms}`,
        { cause: error },
      );
    }
    // The default target sits in the data directory, which is made on first use.
    const problem =
      options.forWriting && choice.setting !== 'default' ? scheme.problemForWriting?.(store) : undefined;
    if (problem !== undefined) {
      throw new AthanorError(
        'invalid_argument',
        `backup target '${choice.url}' (from ${settingText(choice.setting)}): ${problem}`,
      );
    }
    return new BackupTarget(store, choice.setting);
  }

  /** A store handed in (a test's, a tar's temporary directory) as a target; a target as it is. */
  static of(store: ObjectStore): BackupTarget {
    return store instanceof BackupTarget ? store : new BackupTarget(store, undefined);
  }

  put(key: string, body: Readable | Buffer, options?: { signal?: AbortSignal }) {
    return this.#call(() => this.#store.put(key, body, options));
  }

  putIfAbsent(key: string, body: Buffer) {
    return this.#call(() => this.#store.putIfAbsent(key, body));
  }

  get(key: string) {
    return this.#call(() => this.#store.get(key));
  }

  head(key: string) {
    return this.#call(() => this.#store.head(key));
  }

  delete(key: string) {
    return this.#call(() => this.#store.delete(key));
  }

  move(fromKey: string, toKey: string) {
    return this.#call(() => this.#store.move(fromKey, toKey));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    try {
      yield* this.#store.list(prefix);
    } catch (error) {
      throw this.#translate(error);
    }
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.#translate(error);
    }
  }

  #translate(error: unknown): unknown {
    if (!isAthanorError(error)) return error;
    if (error.code === 'objects_unavailable') {
      // An outage gets the writer's wording: nothing was published.
      const reason = `the backup target is unavailable: ${error.message}; nothing was published, retry once it answers`;
      return new AthanorError(
        'backup_target_unavailable',
        this.setting === undefined
          ? reason
          : `${reason} (the backup target, from ${settingText(this.setting)})`,
        { cause: error },
      );
    }
    // A refused write keeps its own wording; a target handed in whole keeps its codes.
    if (this.setting !== undefined && storeFailureCodes.has(error.code)) {
      return new AthanorError(
        'backup_target_unavailable',
        `${error.message} (the backup target, from ${settingText(this.setting)})`,
        { cause: error },
      );
    }
    return error;
  }
}

/**
 * Opens the chosen target on first use and hands out that one target afterwards: the server's
 * gauges, console and scheduler share it, and a bad URL fails only the part that needs it.
 */
export function backupTargetOpener(choice: BackupTargetChoice): () => BackupTarget {
  let target: BackupTarget | undefined;
  return () => (target ??= BackupTarget.open(choice));
}
