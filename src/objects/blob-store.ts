import { createHash, randomBytes } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { AthanorError } from '../domain/errors.js';
import { mapLimited } from '../domain/map-limited.js';
import { bodyChunks } from './body-chunks.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

/** A stored blob: its content address and length. */
export interface BlobInfo {
  /** SHA-256 of the content, 64 lowercase hex characters. */
  readonly sha256: string;
  readonly sizeBytes: number;
}

const sha256Pattern = /^[0-9a-f]{64}$/;

/** Checks a content address: exactly 64 lowercase hex characters (so it is also a safe key). */
export function assertSha256(sha256: string): string {
  if (!sha256Pattern.test(sha256)) {
    const shown = JSON.stringify(sha256.length > 80 ? `${sha256.slice(0, 80)}…` : sha256);
    throw new AthanorError(
      'invalid_argument',
      `${shown} is not a SHA-256 digest: expected 64 lowercase hexadecimal characters`,
    );
  }
  return sha256;
}

/** The key of a blob: `blobs/sha256/ab/abcdef…` (docs/backup-format.md). */
export function blobKey(sha256: string): string {
  assertSha256(sha256);
  return `blobs/sha256/${sha256.slice(0, 2)}/${sha256}`;
}

/** Streamed bodies up to this size are gathered in memory and written once, straight to their key. */
const smallBodyBytes = 256 * 1024;

/**
 * A blob already stored is written again when it is older than this, which renews its modification
 * time: the garbage collector (ops/objects-gc.ts) only removes unreferenced blobs older than its
 * grace period (a day by default), so one about to be referenced again is never among them.
 */
export const blobRefreshAfterMs = 60 * 60 * 1000;

function isFresh(existing: ObjectInfo | undefined, sizeBytes: number): boolean {
  return (
    existing?.sizeBytes === sizeBytes && Date.now() - Date.parse(existing.modifiedAt) < blobRefreshAfterMs
  );
}

/**
 * Stores `body` under its SHA-256, reading it once. A small body (a buffer, or a stream that ends
 * within 256 KiB) is hashed first and written straight to its key; a larger stream is hashed while
 * it is written to a temporary key (`tmp/<random>`), then moved to its blob key. Content already
 * stored is not written again (unless it is older than `blobRefreshAfterMs`).
 */
export async function putBlob(
  store: ObjectStore,
  body: Readable | Buffer,
  options: { signal?: AbortSignal } = {},
): Promise<BlobInfo> {
  if (Buffer.isBuffer(body)) return putSmallBlob(store, body, options);
  const chunks = bodyChunks(body, options.signal);
  const head: Buffer[] = [];
  let headBytes = 0;
  for (;;) {
    const next = await chunks.next();
    if (next.done) return putSmallBlob(store, Buffer.concat(head, headBytes), options);
    head.push(next.value);
    headBytes += next.value.length;
    if (headBytes > smallBodyBytes) break;
  }
  const hash = createHash('sha256');
  const hashed = Readable.from(
    (async function* () {
      for (const chunk of head) {
        hash.update(chunk);
        yield chunk;
      }
      head.length = 0;
      for await (const chunk of chunks) {
        hash.update(chunk);
        yield chunk;
      }
    })(),
  );
  const tempKey = `tmp/${randomBytes(16).toString('hex')}`;
  const { sizeBytes } = await store.put(tempKey, hashed, options);
  const sha256 = hash.digest('hex');
  const key = blobKey(sha256);
  try {
    const existing = await store.head(key);
    // A blob of another length under this digest is damaged: the new copy replaces it.
    if (isFresh(existing, sizeBytes)) await store.delete(tempKey);
    else await store.move(tempKey, key);
  } catch (error) {
    await store.delete(tempKey).catch(() => {});
    throw error;
  }
  return { sha256, sizeBytes };
}

async function putSmallBlob(
  store: ObjectStore,
  body: Buffer,
  options: { signal?: AbortSignal },
): Promise<BlobInfo> {
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (!isFresh(await store.head(blobKey(sha256)), body.length))
    await store.put(blobKey(sha256), body, options);
  return { sha256, sizeBytes: body.length };
}

/** Small blobs written at once by `putSmallBlobs`. */
const smallBlobWritesAtOnce = 16;

/**
 * Stores many small bodies, as `putBlob` would each: content already stored (and fresh) is not
 * written again, nor twice when it comes twice. Resolves once every written blob is durable;
 * a store that can (`file:`) shares one directory sync among the blobs of a directory. With
 * `checked`, the caller has just found each of them missing or stale (`hasFreshBlob`), and they
 * are written without looking again.
 */
export async function putSmallBlobs(
  store: ObjectStore,
  bodies: readonly Buffer[],
  options: { readonly checked?: boolean } = {},
): Promise<BlobInfo[]> {
  const infos = bodies.map((body) => ({
    sha256: createHash('sha256').update(body).digest('hex'),
    sizeBytes: body.length,
  }));
  const unique = new Map<string, Buffer>();
  for (const [i, info] of infos.entries()) unique.set(info.sha256, bodies[i]!);
  const stale = await mapLimited([...unique], smallBlobWritesAtOnce, async ([sha256, body]) =>
    !options.checked && isFresh(await store.head(blobKey(sha256)), body.length)
      ? undefined
      : { key: blobKey(sha256), body },
  );
  const writes = stale.filter((w) => w !== undefined);
  if (store.putMany) await store.putMany(writes);
  else await mapLimited(writes, smallBlobWritesAtOnce, (w) => store.put(w.key, w.body));
  return infos;
}

function blobNotFound(store: ObjectStore, sha256: string, key: string, cause: unknown): AthanorError {
  return new AthanorError('not_found', `blob ${sha256} not found at ${store.url} (key '${key}')`, {
    cause,
    details: { sha256, store: store.url },
  });
}

function damagedBlob(store: ObjectStore, sha256: string, actual: string): AthanorError {
  return new AthanorError(
    'internal',
    `blob ${sha256} at ${store.url} is damaged: its bytes hash to ${actual}. Restore it from a backup or delete it so it is written again`,
    { details: { sha256, actual, store: store.url } },
  );
}

/**
 * The blob's bytes in one buffer, checked against its digest, when the store reads small objects
 * whole (`getSmall`) and the blob holds at most `maxBytes`; undefined otherwise (then `getBlob`
 * streams it). Throws `not_found` when absent.
 */
export async function getSmallBlob(
  store: ObjectStore,
  sha256: string,
  maxBytes: number,
): Promise<Buffer | undefined> {
  if (!store.getSmall) return undefined;
  const key = blobKey(sha256);
  let bytes: Buffer | undefined;
  try {
    bytes = await store.getSmall(key, maxBytes);
  } catch (error) {
    if (error instanceof AthanorError && error.code === 'not_found')
      throw blobNotFound(store, sha256, key, error);
    throw error;
  }
  if (bytes === undefined) return undefined;
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== sha256) throw damagedBlob(store, sha256, actual);
  return bytes;
}

/**
 * A stream of the blob's bytes, checked against its digest as it is read: a damaged blob ends the
 * stream with an error instead of handing out wrong bytes. Throws `not_found` when absent.
 */
export async function getBlob(store: ObjectStore, sha256: string): Promise<Readable> {
  const key = blobKey(sha256);
  let source: Readable;
  try {
    source = await store.get(key);
  } catch (error) {
    if (error instanceof AthanorError && error.code === 'not_found')
      throw blobNotFound(store, sha256, key, error);
    throw error;
  }
  const hash = createHash('sha256');
  const verify = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      callback(actual === sha256 ? undefined : damagedBlob(store, sha256, actual));
    },
  });
  // pipeline destroys the source when the reader stops early, releasing its file or connection.
  return pipeline(source, verify, () => {});
}

/** Whether the blob is stored and was written within `blobRefreshAfterMs` (safe from collection). */
export async function hasFreshBlob(store: ObjectStore, sha256: string, sizeBytes: number): Promise<boolean> {
  return isFresh(await store.head(blobKey(sha256)), sizeBytes);
}

/** Whether the blob is stored. */
export async function hasBlob(store: ObjectStore, sha256: string): Promise<boolean> {
  return (await store.head(blobKey(sha256))) !== undefined;
}

/**
 * A presigned URL for a blob's bytes, when the store can hand one out; undefined otherwise (then
 * the bytes stream through the API).
 */
export async function blobDownloadUrl(
  store: ObjectStore,
  sha256: string,
  expiresInSeconds: number,
): Promise<string | undefined> {
  if (expiresInSeconds <= 0 || !store.downloadUrl) return undefined;
  // A URL that cannot be signed (no credentials to sign with) falls back to streaming.
  return store.downloadUrl(blobKey(sha256), expiresInSeconds).catch(() => undefined);
}
