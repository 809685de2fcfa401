import type { Readable } from 'node:stream';

/** Facts about one stored object. */
export interface ObjectInfo {
  readonly key: string;
  readonly sizeBytes: number;
  /** Last modification time as an ISO 8601 instant. */
  readonly modifiedAt: string;
}

/**
 * A flat key → bytes store: a directory (`file:<dir>`) or an S3 bucket prefix
 * (`s3://bucket/prefix`). Keys use `/` as separator and never start with one.
 * Writes are streamed and atomic: a reader sees the whole object or none of it.
 */
export interface ObjectStore {
  /** The store's URL, for messages (never with credentials). */
  readonly url: string;
  /** Streams `body` to `key`; published only when complete (temporary name + rename, or S3 multipart). */
  put(
    key: string,
    body: Readable | Buffer,
    options?: { signal?: AbortSignal },
  ): Promise<{ sizeBytes: number }>;
  /**
   * Writes many small objects as `put` would each, and resolves once all of them are durable;
   * a store may share work among them (`file:` syncs each directory once). Absent on stores
   * without such sharing: callers then `put` each.
   */
  putMany?(objects: readonly { readonly key: string; readonly body: Buffer }[]): Promise<void>;
  /**
   * Creates `key` only when it does not exist; returns false when it already did. Used for
   * leases and locks, so it must be atomic against other writers.
   */
  putIfAbsent(key: string, body: Buffer): Promise<boolean>;
  /** A stream of the object's bytes; throws `not_found` when absent. */
  get(key: string): Promise<Readable>;
  /**
   * The object's bytes in one buffer when it holds at most `maxBytes`, undefined when it is larger
   * (then `get` streams it); throws `not_found` when absent. Absent on stores without a cheaper
   * whole read than `get` (`s3://`).
   */
  getSmall?(key: string, maxBytes: number): Promise<Buffer | undefined>;
  /** The object's facts, or undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in key order (UTF-8 byte order, as S3 lists). */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes the object; absent objects are not an error. */
  delete(key: string): Promise<void>;
  /**
   * Moves an object to `toKey`, replacing any object there; throws `not_found` when `fromKey` is
   * absent. A rename for `file:`; a server-side copy then delete for `s3://` (readers of `toKey`
   * still see the whole old object or the whole new one).
   */
  move(fromKey: string, toKey: string): Promise<void>;
  /**
   * A URL that downloads the object without credentials for `expiresInSeconds` (S3 presigned
   * GET); absent on stores that cannot hand out such URLs (`file:`).
   */
  downloadUrl?(key: string, expiresInSeconds: number): Promise<string>;
}
