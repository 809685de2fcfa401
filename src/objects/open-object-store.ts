import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AthanorError } from '../domain/errors.js';
import { FsObjectStore } from './fs-object-store.js';
import type { ObjectStore } from './object-store.js';
import { DeferredS3ObjectStore } from './deferred-s3-object-store.js';

/** Options of `openObjectStore`. */
export interface OpenObjectStoreOptions {
  /** Where `s3://` stores read `AWS_*` settings; default: the process environment. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Opens the object store named by `url` (`ATHANOR_OBJECTS_URL`): `file:<dir>` (relative to the
 * working directory, or `file:///absolute/dir`) or `s3://bucket/prefix` (the AWS SDK loads on first use).
 */
export function openObjectStore(url: string, options: OpenObjectStoreOptions = {}): ObjectStore {
  if (url.startsWith('file:')) {
    const dir = url.startsWith('file://') ? fileUrlPath(url) : url.slice('file:'.length);
    if (dir === '') {
      throw new AthanorError(
        'invalid_config',
        "object store URL 'file:' names no directory: use file:<dir>, e.g. file:./athanor-data/objects",
      );
    }
    return new FsObjectStore(path.resolve(process.cwd(), dir));
  }
  if (url.startsWith('s3://')) return new DeferredS3ObjectStore(url, { env: options.env });
  throw new AthanorError(
    'invalid_config',
    `object store URL '${url.replace(/\/\/[^/@]*@/, '//***@')}' is not supported: set ATHANOR_OBJECTS_URL to file:<dir> or s3://bucket/prefix`,
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
