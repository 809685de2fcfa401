import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { link, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AthanorError, isAthanorError } from '../domain/errors.js';
import { mapLimited } from '../domain/map-limited.js';
import { abortError, bodyChunks } from './body-chunks.js';
import { assertObjectKey, assertObjectPrefix, compareObjectKeys } from './object-key.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';
import { makeDirectory } from './make-directory.js';

/** Where partial writes live until they are renamed into place; never a key's first segment. */
const tempDirName = '.athanor-tmp';
/** Objects written at once by `putMany`. */
const writesAtOnce = 16;
/** How often a publish retries when a concurrent delete pruned the directory it just created. */
const publishAttempts = 5;
/** Results and backups are tenant data: readable by the service's OS user only. */
export const privateFileMode = 0o600;
export const privateDirMode = 0o700;

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (facts) => facts.isFile(),
    () => false,
  );
}

/**
 * `file:<dir>`: one file per object under `dir`, keys mapped to paths. Writes go to
 * `<dir>/.athanor-tmp/`, are fsynced, then renamed (or hard-linked, for `putIfAbsent`) into place,
 * so readers and other processes see a whole object or none.
 */
export class FsObjectStore implements ObjectStore {
  readonly url: string;
  readonly #root: string;
  readonly #tempDir: string;

  constructor(dir: string) {
    this.#root = path.resolve(dir);
    this.#tempDir = path.join(this.#root, tempDirName);
    this.url = `file:${this.#root}`;
  }

  async put(
    key: string,
    body: Readable | Buffer,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ sizeBytes: number }> {
    const target = this.#pathOf(key);
    const temp = await this.#writeTemp(key, body, options.signal);
    try {
      await this.#publish(key, target, () => rename(temp.path, target));
    } catch (error) {
      await rm(temp.path, { force: true });
      throw error;
    }
    return { sizeBytes: temp.sizeBytes };
  }

  /**
   * Each object written, fsynced and renamed into place as by `put`, then each directory that
   * received one synced once: a batch of results spread over a few hundred blob directories
   * makes one directory sync per directory instead of one per object.
   */
  async putMany(objects: readonly { readonly key: string; readonly body: Buffer }[]): Promise<void> {
    const dirs = new Set<string>();
    await mapLimited(objects, writesAtOnce, async ({ key, body }) => {
      const target = this.#pathOf(key);
      const temp = await this.#writeTemp(key, body, undefined);
      try {
        await this.#publish(key, target, () => rename(temp.path, target), { sync: false });
      } catch (error) {
        await rm(temp.path, { force: true });
        throw error;
      }
      dirs.add(path.dirname(target));
    });
    await mapLimited([...dirs], writesAtOnce, syncDirectory);
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const target = this.#pathOf(key);
    const temp = await this.#writeTemp(key, body, undefined);
    try {
      // link() refuses an existing target, unlike rename(): that makes it the atomic test-and-set,
      // and the object appears with all its bytes at once.
      await this.#publish(key, target, () => link(temp.path, target));
      return true;
    } catch (error) {
      if (isAthanorError(error) && error.code === 'conflict') return false;
      throw error;
    } finally {
      await rm(temp.path, { force: true });
    }
  }

  async get(key: string): Promise<Readable> {
    const { handle } = await this.#openFile(key);
    return handle.createReadStream();
  }

  async getSmall(key: string, maxBytes: number): Promise<Buffer | undefined> {
    const { handle, sizeBytes } = await this.#openFile(key);
    try {
      if (sizeBytes > maxBytes) return undefined;
      return await this.#io(`read object '${key}'`, handle.readFile());
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** The object's file, open for reading, and its size; `not_found` when there is no such file. */
  async #openFile(key: string): Promise<{ handle: FileHandle; sizeBytes: number }> {
    let handle: FileHandle;
    try {
      handle = await open(this.#pathOf(key), 'r');
    } catch (error) {
      if (['ENOENT', 'ENOTDIR', 'EISDIR'].includes(errorCode(error) ?? '')) throw this.#notFound(key);
      throw this.#ioError(`read object '${key}'`, error);
    }
    const facts = await handle.stat().catch(() => undefined);
    if (!facts?.isFile()) {
      await handle.close().catch(() => {});
      throw this.#notFound(key);
    }
    return { handle, sizeBytes: facts.size };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.#pathOf(key);
    try {
      const facts = await stat(file);
      if (!facts.isFile()) return undefined;
      return { key, sizeBytes: facts.size, modifiedAt: facts.mtime.toISOString() };
    } catch (error) {
      if (['ENOENT', 'ENOTDIR'].includes(errorCode(error) ?? '')) return undefined;
      throw this.#ioError(`read object '${key}'`, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertObjectPrefix(prefix);
    yield* this.#walk(prefix.slice(0, prefix.lastIndexOf('/') + 1), prefix);
  }

  async delete(key: string): Promise<void> {
    const file = this.#pathOf(key);
    try {
      await rm(file);
    } catch (error) {
      // A directory at the key is other objects' prefix, not an object: nothing to delete.
      if (['ENOENT', 'ENOTDIR', 'EISDIR', 'ERR_FS_EISDIR'].includes(errorCode(error) ?? '')) return;
      throw this.#ioError(`delete object '${key}'`, error);
    }
    await this.#pruneEmptyParents(file);
  }

  async move(fromKey: string, toKey: string): Promise<void> {
    const source = this.#pathOf(fromKey);
    const target = this.#pathOf(toKey);
    if ((await this.head(fromKey)) === undefined) throw this.#notFound(fromKey);
    if (source === target) return;
    try {
      await this.#publish(toKey, target, () => rename(source, target));
    } catch (error) {
      if ((await this.head(fromKey)) === undefined) throw this.#notFound(fromKey);
      throw error;
    }
    await this.#pruneEmptyParents(source);
  }

  #pathOf(key: string): string {
    assertObjectKey(key);
    if (key.split('/', 1)[0] === tempDirName) {
      throw new AthanorError(
        'invalid_argument',
        `object key '${key}' is refused: '${tempDirName}/' holds ${this.url}'s partial writes`,
      );
    }
    return path.join(this.#root, ...key.split('/'));
  }

  async #writeTemp(
    key: string,
    body: Readable | Buffer,
    signal: AbortSignal | undefined,
  ): Promise<{ path: string; sizeBytes: number }> {
    if (signal?.aborted) throw abortError(signal);
    const tempPath = path.join(this.#tempDir, randomBytes(16).toString('hex'));
    let handle: FileHandle;
    try {
      // The temporary directory nearly always exists: it is created when an open finds it missing.
      handle = await open(tempPath, 'wx', privateFileMode).catch(async (error: unknown) => {
        if (errorCode(error) !== 'ENOENT') throw error;
        await makeDirectory(this.#tempDir, privateDirMode);
        return open(tempPath, 'wx', privateFileMode);
      });
    } catch (error) {
      throw this.#ioError(`write object '${key}'`, error);
    }
    let sizeBytes = 0;
    try {
      if (Buffer.isBuffer(body)) {
        await this.#io(`write object '${key}'`, handle.writeFile(body));
        sizeBytes = body.length;
      } else {
        // Errors from the body are the caller's and pass through untouched; only disk errors are ours.
        for await (const chunk of bodyChunks(body, signal)) {
          await this.#io(`write object '${key}'`, handle.writeFile(chunk));
          sizeBytes += chunk.length;
        }
      }
      if (signal?.aborted) throw abortError(signal);
      await this.#io(`write object '${key}'`, handle.sync());
    } catch (error) {
      await handle.close().catch(() => {});
      await rm(tempPath, { force: true });
      throw error;
    }
    await handle.close();
    return { path: tempPath, sizeBytes };
  }

  /**
   * Runs a rename or link into `target`, first straight away (its directory usually exists), then
   * after creating the directory when the step found it missing; then syncs the directory, unless
   * the caller syncs it later itself.
   */
  async #publish(
    key: string,
    target: string,
    step: () => Promise<void>,
    options = { sync: true },
  ): Promise<void> {
    const dir = path.dirname(target);
    for (let attempt = 1; ; attempt++) {
      try {
        if (attempt > 1) await makeDirectory(dir, privateDirMode);
        await step();
        break;
      } catch (error) {
        const code = errorCode(error);
        if (code === 'ENOENT' && attempt < publishAttempts) continue;
        if (code === 'EEXIST' && (await isFile(target))) {
          throw new AthanorError('conflict', `object '${key}' already exists at ${this.url}`, {
            cause: error,
          });
        }
        if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTEMPTY') {
          throw new AthanorError(
            'invalid_argument',
            `object key '${key}' cannot be stored at ${this.url}: a file: store cannot hold both an object and other objects under it as a prefix ('a' and 'a/b')`,
            { cause: error },
          );
        }
        throw this.#ioError(`write object '${key}'`, error);
      }
    }
    if (options.sync) await syncDirectory(dir);
  }

  async *#walk(dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(path.join(this.#root, ...dirKey.split('/')), { withFileTypes: true });
    } catch (error) {
      if (['ENOENT', 'ENOTDIR'].includes(errorCode(error) ?? '')) return;
      throw this.#ioError(`list objects under '${dirKey}'`, error);
    }
    // A directory sorts as `name/` so that 'a-b' comes before 'a/c', as in S3's byte order.
    const children = entries
      .filter((entry) => !(dirKey === '' && entry.name === tempDirName))
      .filter((entry) => entry.isFile() || entry.isDirectory())
      .map((entry) => ({ entry, key: `${dirKey}${entry.name}${entry.isDirectory() ? '/' : ''}` }))
      .sort((a, b) => compareObjectKeys(a.key, b.key));
    for (const { entry, key } of children) {
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(key)) yield* this.#walk(key, prefix);
      } else if (key.startsWith(prefix)) {
        const info = await this.head(key).catch(() => undefined);
        if (info) yield info;
      }
    }
  }

  /** Removes directories left empty by a delete or move, up to (not including) the root. */
  async #pruneEmptyParents(file: string): Promise<void> {
    for (
      let dir = path.dirname(file);
      dir !== this.#root && dir.startsWith(this.#root);
      dir = path.dirname(dir)
    ) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
    }
  }

  async #io<T>(action: string, promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      throw this.#ioError(action, error);
    }
  }

  #ioError(action: string, error: unknown): AthanorError {
    const reason = error instanceof Error ? error.message : String(error);
    // A full or failing disk is an outage the caller may retry through; anything else is a fault.
    const outage = ['ENOSPC', 'EDQUOT', 'EIO'].includes(errorCode(error) ?? '');
    return new AthanorError(
      outage ? 'objects_unavailable' : 'internal',
      `cannot ${action} at ${this.url}: ${reason}. Check the directory exists, is writable and has free space`,
      { cause: error },
    );
  }

  #notFound(key: string): AthanorError {
    return new AthanorError('not_found', `object '${key}' not found at ${this.url}`, {
      details: { key, store: this.url },
    });
  }
}

/** Makes a rename or link in `dir` durable. Best effort: some file systems refuse fsync on a directory. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // The rename already happened; only its durability across a power cut is in question.
  } finally {
    await handle?.close().catch(() => {});
  }
}
