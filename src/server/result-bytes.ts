import type { FastifyReply } from 'fastify';
import type { ResultView } from '../domain/api-views.js';
import { AthanorError } from '../domain/errors.js';
import type { ObjectStore } from '../objects/object-store.js';
import { openResultBytes } from '../service/result-body.js';
import type { Store } from '../store/open-store.js';

/**
 * Answers a result's bytes as a stream (never a JSON-wrapped blob), with its sha256 and length:
 * the download route of both APIs. A failure without stored bytes, or a server without an object
 * store, answers `not_found`. With `presignSeconds` and a store that signs URLs, a result stored
 * as a blob is answered with a 302 to its presigned URL instead (one stored inline always streams).
 */
export async function sendResultBytes(
  reply: FastifyReply,
  store: Store,
  objects: ObjectStore | undefined,
  result: ResultView,
  options: { readonly presignSeconds?: number; readonly headers?: Readonly<Record<string, string>> } = {},
): Promise<FastifyReply> {
  if (!result.sha256 || !objects) {
    throw new AthanorError('not_found', `result '${result.id}' has no stored bytes`);
  }
  const bytes = await openResultBytes(store, objects, result, { presignSeconds: options.presignSeconds });
  void reply.header('x-athanor-sha256', result.sha256);
  // Handed to the object store (a presigned URL) when configured: the bytes bypass the API.
  if ('url' in bytes) return reply.redirect(bytes.url, 302);
  void reply.header('content-type', 'application/octet-stream').headers(options.headers ?? {});
  if (result.sizeBytes !== null) void reply.header('content-length', String(result.sizeBytes));
  return reply.send(bytes.stream);
}
