import { processEnvironment } from '../config/environment.js';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AthanorError } from '../domain/errors.js';
import { abortError, bodyChunks } from './body-chunks.js';
import { assertObjectKey, assertObjectPrefix } from './object-key.js';
import { parseS3Url, s3StoreUrl } from './s3-url.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

/** Options of an `s3://` store. */
export interface S3ObjectStoreOptions {
  /** Where `AWS_*` settings are read from; default: the process environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** Keys per ListObjectsV2 page; default 1000, the S3 maximum. */
  readonly listPageSize?: number;
  /** Multipart upload part size in bytes; default 8 MiB (S3's minimum is 5 MiB). */
  readonly partSizeBytes?: number;
}

const mebibyte = 1024 * 1024;
/** Parts in flight per upload: memory use is about (queueSize + 1) × partSize. */
const uploadQueueSize = 2;
/** CopyObject's limit; larger objects are copied part by part with UploadPartCopy. */
const maxSingleCopyBytes = 5 * 1024 * mebibyte;
const copyPartBytes = 512 * mebibyte;
const maxParts = 10_000;
/** Retries of a conditional put that S3 answered with 409 ConditionalRequestConflict. */
const conditionalPutAttempts = 5;

interface S3Failure {
  readonly name?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function httpStatus(error: unknown): number | undefined {
  return (error as S3Failure | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as S3Failure | undefined)?.name;
  return httpStatus(error) === 404 || name === 'NotFound' || name === 'NoSuchKey';
}

function clientConfig(env: NodeJS.ProcessEnv): S3ClientConfig {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    // MinIO, Ceph and most other S3 peers serve buckets as paths, not as host names.
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Otherwise the SDK's standard chain (environment, profiles, SSO, instance roles) applies.
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined } }
      : {}),
  };
}

/**
 * `s3://bucket/prefix` on AWS S3 or any S3 protocol peer (MinIO, Ceph, R2…), configured by the
 * standard `AWS_*` environment: `AWS_ENDPOINT_URL` (path-style addressing when set), `AWS_REGION`
 * (default us-east-1) and the SDK's credential chain. Uploads are multipart and streamed.
 */
export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #endpointName: string;
  readonly #listPageSize: number;
  readonly #partSizeBytes: number;
  #conditionalWritesChecked: Promise<void> | undefined;

  constructor(url: string, options: S3ObjectStoreOptions = {}) {
    const { bucket, prefix } = parseS3Url(url);
    const env = options.env ?? processEnvironment();
    const config = clientConfig(env);
    this.#bucket = bucket;
    this.#prefix = prefix;
    this.url = s3StoreUrl(url);
    this.#endpointName = config.endpoint ? hostOf(String(config.endpoint)) : 'AWS S3';
    this.#listPageSize = options.listPageSize ?? 1000;
    this.#partSizeBytes = options.partSizeBytes ?? 8 * mebibyte;
    this.#client = new S3Client(config);
  }

  async put(
    key: string,
    body: Readable | Buffer,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ sizeBytes: number }> {
    const fullKey = this.#fullKey(key);
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal);
    let sizeBytes = 0;
    let sourceError: unknown;
    const source = body;
    const counted = Buffer.isBuffer(source)
      ? source
      : Readable.from(
          (async function* () {
            try {
              for await (const chunk of bodyChunks(source, signal)) {
                sizeBytes += chunk.length;
                yield chunk;
              }
            } catch (error) {
              sourceError = error;
              throw error;
            }
          })(),
        );
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    // A multipart upload becomes visible only on CompleteMultipartUpload, a single PutObject only
    // when whole: a failed or aborted stream leaves nothing behind at the key.
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key: fullKey, Body: counted },
      partSize: this.#partSizeBytes,
      queueSize: uploadQueueSize,
      abortController: controller,
    });
    try {
      await upload.done();
    } catch (error) {
      if (!Buffer.isBuffer(counted)) counted.destroy();
      if (!Buffer.isBuffer(source)) source.destroy();
      // The upload's own clean-up (AbortMultipartUpload) may fail and hide why it stopped.
      if (sourceError !== undefined) throw sourceError;
      if (signal?.aborted) throw abortError(signal);
      throw this.#error(`write object '${key}'`, error);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return { sizeBytes: Buffer.isBuffer(source) ? source.length : sizeBytes };
  }

  /**
   * Guarantee: atomic exactly when the peer honours a conditional PUT (`If-None-Match: *`), as AWS
   * S3 (since August 2024), MinIO and most current S3 services do: the peer itself decides which
   * writer created the key, and the losers get 412. A peer that ignores the header lets two writers
   * both "win", and no client-side trick closes that race (a writer that reads back its own nonce
   * can still be overwritten a moment later, after it returned true). So the first call on each
   * store probes the peer once (a conditional PUT twice on a scratch key), and on a peer without
   * conditional writes every call fails with `invalid_config` instead of handing out a lease twice.
   * One residue: if the SDK retries a PUT whose first attempt succeeded but whose answer was lost,
   * the retry gets 412 and the caller is told false for a key it created; a lease then waits out
   * its TTL, which is safe.
   */
  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const fullKey = this.#fullKey(key);
    await this.#checkConditionalWrites();
    return this.#conditionalPut(key, fullKey, body);
  }

  async downloadUrl(key: string, expiresInSeconds: number): Promise<string> {
    const command = new GetObjectCommand({ Bucket: this.#bucket, Key: this.#fullKey(key) });
    return getSignedUrl(this.#client, command, { expiresIn: expiresInSeconds });
  }

  async get(key: string): Promise<Readable> {
    const fullKey = this.#fullKey(key);
    let response;
    try {
      response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: fullKey }));
    } catch (error) {
      if (isNotFound(error)) throw this.#notFound(key);
      throw this.#error(`read object '${key}'`, error);
    }
    const body = response.Body;
    if (!(body instanceof Readable)) {
      throw new AthanorError('internal', `reading object '${key}' at ${this.url} returned no byte stream`);
    }
    return body;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const fullKey = this.#fullKey(key);
    try {
      const response = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: fullKey }));
      return {
        key,
        sizeBytes: response.ContentLength ?? 0,
        modifiedAt: (response.LastModified ?? new Date(0)).toISOString(),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.#error(`read object '${key}'`, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertObjectPrefix(prefix);
    const fullPrefix = this.#prefix === '' ? prefix : `${this.#prefix}/${prefix}`;
    const strip = this.#prefix === '' ? 0 : this.#prefix.length + 1;
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: fullPrefix,
            MaxKeys: this.#listPageSize,
            ContinuationToken: continuationToken,
          }),
        );
      } catch (error) {
        throw this.#error(`list objects under '${prefix}'`, error);
      }
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield {
          key: item.Key.slice(strip),
          sizeBytes: item.Size ?? 0,
          modifiedAt: (item.LastModified ?? new Date(0)).toISOString(),
        };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async delete(key: string): Promise<void> {
    const fullKey = this.#fullKey(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: fullKey }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.#error(`delete object '${key}'`, error);
    }
  }

  async move(fromKey: string, toKey: string): Promise<void> {
    const source = this.#fullKey(fromKey);
    const target = this.#fullKey(toKey);
    const info = await this.head(fromKey);
    if (info === undefined) throw this.#notFound(fromKey);
    if (source === target) return;
    const copySource = `${this.#bucket}/${source.split('/').map(encodeURIComponent).join('/')}`;
    try {
      if (info.sizeBytes <= maxSingleCopyBytes) {
        await this.#client.send(
          new CopyObjectCommand({ Bucket: this.#bucket, Key: target, CopySource: copySource }),
        );
      } else {
        await this.#copyInParts(copySource, target, info.sizeBytes);
      }
    } catch (error) {
      if (isNotFound(error)) throw this.#notFound(fromKey);
      throw this.#error(`move object '${fromKey}' to '${toKey}'`, error);
    }
    await this.delete(fromKey);
  }

  /** Server-side copy of an object too large for CopyObject; nothing is visible until complete. */
  async #copyInParts(copySource: string, target: string, sizeBytes: number): Promise<void> {
    const partBytes = Math.max(copyPartBytes, Math.ceil(sizeBytes / maxParts));
    const { UploadId } = await this.#client.send(
      new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: target }),
    );
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, partNumber = 1; start < sizeBytes; start += partBytes, partNumber++) {
        const end = Math.min(start + partBytes, sizeBytes) - 1;
        const { CopyPartResult } = await this.#client.send(
          new UploadPartCopyCommand({
            Bucket: this.#bucket,
            Key: target,
            UploadId,
            PartNumber: partNumber,
            CopySource: copySource,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: partNumber, ETag: CopyPartResult?.ETag });
      }
      await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: target,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: target, UploadId }))
        .catch(() => {});
      throw error;
    }
  }

  async #conditionalPut(key: string, fullKey: string, body: Buffer): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#client.send(
          new PutObjectCommand({ Bucket: this.#bucket, Key: fullKey, Body: body, IfNoneMatch: '*' }),
        );
        return true;
      } catch (error) {
        const status = httpStatus(error);
        if (status === 412) return false;
        // 409 ConditionalRequestConflict: another conditional write to the key is in flight.
        if (status === 409 && attempt < conditionalPutAttempts) {
          await sleep(20 * attempt + Math.random() * 50);
          continue;
        }
        if (status === 501) throw this.#noConditionalWrites(error);
        throw this.#error(`create object '${key}'`, error);
      }
    }
  }

  #checkConditionalWrites(): Promise<void> {
    this.#conditionalWritesChecked ??= this.#probeConditionalWrites().catch((error: unknown) => {
      this.#conditionalWritesChecked = undefined;
      throw error;
    });
    return this.#conditionalWritesChecked;
  }

  async #probeConditionalWrites(): Promise<void> {
    const key = `.athanor/probes/conditional-write-${randomBytes(8).toString('hex')}`;
    const fullKey = this.#fullKey(key);
    try {
      const first = await this.#conditionalPut(key, fullKey, Buffer.from('probe\n'));
      const second = await this.#conditionalPut(key, fullKey, Buffer.from('probe\n'));
      if (!first || second) throw this.#noConditionalWrites(undefined);
    } finally {
      await this.delete(key).catch(() => {});
    }
  }

  #noConditionalWrites(error: unknown): AthanorError {
    return new AthanorError(
      'invalid_config',
      `the S3 service at ${this.#endpointName} ignores conditional writes (PUT with If-None-Match: *), so leases and locks at ${this.url} could be taken twice: point ATHANOR_OBJECTS_URL (and AWS_ENDPOINT_URL) at a service that supports them, such as AWS S3 or MinIO`,
      { cause: withoutWireDetails(error) },
    );
  }

  #fullKey(key: string): string {
    assertObjectKey(key);
    return this.#prefix === '' ? key : `${this.#prefix}/${key}`;
  }

  #notFound(key: string): AthanorError {
    return new AthanorError('not_found', `object '${key}' not found at ${this.url}`, {
      details: { key, store: this.url },
    });
  }

  /** An SDK failure as an AthanorError that names the store and the next step; never credentials. */
  #error(action: string, error: unknown): AthanorError {
    const failure = (error ?? {}) as S3Failure;
    const status = httpStatus(error);
    const name = failure.name ?? 'Error';
    const reason = `${name}${status === undefined ? '' : ` (HTTP ${status})`}: ${failure.message ?? String(error)}`;
    const where = `${this.url} on ${this.#endpointName}`;
    if (name === 'NoSuchBucket') {
      return new AthanorError(
        'invalid_config',
        `cannot ${action}: bucket '${this.#bucket}' does not exist on ${this.#endpointName}; create it or fix ATHANOR_OBJECTS_URL`,
        { cause: withoutWireDetails(error) },
      );
    }
    if (name === 'CredentialsProviderError') {
      return new AthanorError(
        'invalid_config',
        `cannot ${action} at ${where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`,
        { cause: withoutWireDetails(error) },
      );
    }
    if (status === 401 || status === 403) {
      return new AthanorError(
        'invalid_config',
        `cannot ${action} at ${where}: access refused (${reason}); check the credentials, AWS_REGION and the bucket policy`,
        { cause: withoutWireDetails(error) },
      );
    }
    if (status === undefined) {
      return new AthanorError(
        'objects_unavailable',
        `cannot ${action} at ${where}: ${reason}; check AWS_ENDPOINT_URL and that the service is reachable`,
        { cause: withoutWireDetails(error) },
      );
    }
    return new AthanorError(
      status >= 500 ? 'objects_unavailable' : 'internal',
      `cannot ${action} at ${where}: ${reason}`,
      {
        cause: withoutWireDetails(error),
      },
    );
  }
}

/**
 * The SDK's error without its raw HTTP exchange, whose request headers carry the access key id and
 * a signature: an error may be logged with its cause, and credentials never are.
 */
function withoutWireDetails(error: unknown): Error | undefined {
  if (error === undefined) return undefined;
  const failure = error as S3Failure;
  const copy = new Error(failure.message ?? String(error));
  copy.name = failure.name ?? 'Error';
  return Object.assign(copy, { httpStatusCode: httpStatus(error) });
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return 'the configured endpoint';
  }
}
