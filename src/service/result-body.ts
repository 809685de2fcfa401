import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AthanorError } from '../domain/errors.js';
import type { BlobInfo } from '../objects/blob-store.js';
import { blobDownloadUrl, getBlob } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import type { Store } from '../store/open-store.js';
import { findInlineResultBody } from '../store/queries/tasks.js';

/**
 * Whether a successful result with these bytes is stored in its row rather than as a blob: its
 * bytes are in memory and at most `inlineMaxBytes` long (the `inlineResultMaxBytes` setting). Such
 * a result is written by the transaction that records it, whose commit makes it durable, so it
 * costs no object-store write.
 */
export function storeInline(body: Buffer, inlineMaxBytes: number): boolean {
  return body.length <= inlineMaxBytes;
}

/** The digest and length a result stored in its row records, as a blob's would be. */
export function inlineBlobInfo(body: Buffer): BlobInfo {
  return { sha256: createHash('sha256').update(body).digest('hex'), sizeBytes: body.length };
}

/** A stored result, as far as reading its bytes needs. */
export interface ResultRef {
  readonly id: string;
  /** Its bytes' SHA-256; null for a failure recorded without bytes. */
  readonly sha256: string | null;
}

/** Where a result's bytes come from: a stream, or a presigned URL of the object store. */
export type ResultBytes = { readonly stream: Readable } | { readonly url: string };

/**
 * Opens a result's bytes, wherever they are stored: from its row when they are inline, else from
 * its blob, checked against the digest as it streams. With `presignSeconds` and an object store
 * that signs URLs, a blob is answered as a presigned URL instead; inline bytes always stream.
 * Throws `not_found` when the result has no bytes.
 */
export async function openResultBytes(
  store: Store,
  objects: ObjectStore,
  result: ResultRef,
  options: { readonly presignSeconds?: number } = {},
): Promise<ResultBytes> {
  if (!result.sha256) throw new AthanorError('not_found', `result '${result.id}' has no stored bytes`);
  const inline = await findInlineResultBody(store.db, result.id);
  if (inline) return { stream: Readable.from([inline]) };
  const url = await blobDownloadUrl(objects, result.sha256, options.presignSeconds ?? 0);
  if (url !== undefined) return { url };
  return { stream: await getBlob(objects, result.sha256) };
}

/** `openResultBytes` as a stream, never a URL: for bytes the server reads itself. */
export async function readResultBytes(
  store: Store,
  objects: ObjectStore,
  result: ResultRef,
): Promise<Readable> {
  const bytes = await openResultBytes(store, objects, result);
  if ('url' in bytes) throw new AthanorError('internal', `result '${result.id}' answered a URL unasked`);
  return bytes.stream;
}
