import type { Readable } from 'node:stream';
import type { ObjectInfo, ObjectStore } from './object-store.js';
import type { S3ObjectStore, S3ObjectStoreOptions } from './s3-object-store.js';
import { s3StoreUrl } from './s3-url.js';

/**
 * An `s3://` store that loads the AWS SDK on its first call, not when it is opened: a command
 * that opens the configured stores but never touches S3 (most of them) starts without it. The
 * URL is checked at once, as `S3ObjectStore` checks it.
 */
export class DeferredS3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly #sourceUrl: string;
  readonly #options: S3ObjectStoreOptions;
  #store: Promise<S3ObjectStore> | undefined;

  constructor(url: string, options: S3ObjectStoreOptions = {}) {
    this.url = s3StoreUrl(url);
    this.#sourceUrl = url;
    this.#options = options;
  }

  #loaded(): Promise<S3ObjectStore> {
    this.#store ??= import('./s3-object-store.js').then(
      ({ S3ObjectStore }) => new S3ObjectStore(this.#sourceUrl, this.#options),
    );
    return this.#store;
  }

  async put(key: string, body: Readable | Buffer, options?: { signal?: AbortSignal }) {
    return (await this.#loaded()).put(key, body, options);
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    return (await this.#loaded()).putIfAbsent(key, body);
  }

  async get(key: string): Promise<Readable> {
    return (await this.#loaded()).get(key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return (await this.#loaded()).head(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    yield* (await this.#loaded()).list(prefix);
  }

  async delete(key: string): Promise<void> {
    return (await this.#loaded()).delete(key);
  }

  async move(fromKey: string, toKey: string): Promise<void> {
    return (await this.#loaded()).move(fromKey, toKey);
  }

  async downloadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return (await this.#loaded()).downloadUrl(key, expiresInSeconds);
  }
}
