import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AthanorError } from '../domain/errors.js';
import { DeferredS3ObjectStore } from './deferred-s3-object-store.js';
import { FsObjectStore } from './fs-object-store.js';
import type { ObjectStore } from './object-store.js';

/** Options of `openObjectStore`. */
export interface OpenObjectStoreOptions {
  /** Where `s3://` stores read `AWS_*` settings; default: the process environment. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * One kind of object store URL: the result store (`ATHANOR_OBJECTS_URL`) and backup targets
 * (`ATHANOR_BACKUP_TARGET`) are both opened through this registry, so a new kind of store is its
 * `ObjectStore` class and one entry in `objectStoreSchemes`.
 */
export interface ObjectStoreScheme {
  /** Whether `url` is of this kind. */
  matches(url: string): boolean;
  /** How its URLs are written, for `--help` and messages: `file:<dir>`. */
  readonly form: string;
  /** Checks the URL (`invalid_config` naming what is wrong) and opens the store; no I/O yet. */
  open(url: string, options: OpenObjectStoreOptions): ObjectStore;
  /**
   * Before a backup is written: why the opened store is surely a mistake (a `file:` directory
   * whose parent does not exist, a typo three levels deep that would otherwise be created), or
   * undefined. Kinds that cannot tell leave it out.
   */
  problemForWriting?(store: ObjectStore): string | undefined;
}

const isDirectory = (dir: string) => {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
};

const fileScheme: ObjectStoreScheme = {
  matches: (url) => url.startsWith('file:'),
  form: 'file:<dir>',
  open(url) {
    const dir = url.startsWith('file://') ? fileUrlPath(url) : url.slice('file:'.length);
    if (dir === '') {
      throw new AthanorError(
        'invalid_config',
        "object store URL 'file:' names no directory: use file:<dir>, e.g. file:./athanor-data/objects",
      );
    }
    return new FsObjectStore(path.resolve(process.cwd(), dir));
  },
  problemForWriting(store) {
    const dir = store.url.slice('file:'.length);
    const parent = path.dirname(dir);
    return isDirectory(dir) || isDirectory(parent)
      ? undefined
      : `its parent ${parent} is not an existing directory; create it first, or fix the URL`;
  },
};

const s3Scheme: ObjectStoreScheme = {
  matches: (url) => url.startsWith('s3://'),
  form: 's3://bucket/prefix',
  // The AWS SDK loads on the store's first call.
  open: (url, options) => new DeferredS3ObjectStore(url, { env: options.env }),
};

/** Every kind of object store, in the order `--help` names them. */
export const objectStoreSchemes: readonly ObjectStoreScheme[] = [fileScheme, s3Scheme];

/** How object store URLs are written: `file:<dir> or s3://bucket/prefix`. */
export const objectStoreUrlForms = objectStoreSchemes.map((scheme) => scheme.form).join(' or ');

/** The scheme of `url`, or undefined when no kind of store takes it. */
export function objectStoreScheme(url: string): ObjectStoreScheme | undefined {
  return objectStoreSchemes.find((scheme) => scheme.matches(url));
}

/**
 * Opens the object store named by `url` (`ATHANOR_OBJECTS_URL`): `file:<dir>` (relative to the
 * working directory, or `file:///absolute/dir`) or `s3://bucket/prefix` (the AWS SDK loads on first use).
 */
export function openObjectStore(url: string, options: OpenObjectStoreOptions = {}): ObjectStore {
  const scheme = objectStoreScheme(url);
  if (scheme) return scheme.open(url, options);
  throw new AthanorError(
    'invalid_config',
    `object store URL '${url.replace(/\/\/[^/@]*@/, '//***@')}' is not supported: set ATHANOR_OBJECTS_URL to ${objectStoreUrlForms}`,
  );
}

function fileUrlPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch (cause) {
    throw new AthanorError(
      'invalid_config',
      `object store URL '${url}' is not a local file URL: use file:<dir> or file:///absolute/dir`,
      { cause },
    );
  }
}
