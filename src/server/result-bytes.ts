import type { FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import type { ResultView } from '../domain/api-views.js';
import { AthanorError } from '../domain/errors.js';

/**
 * Answers a result's bytes as a stream (never a JSON-wrapped blob), with its sha256 and length:
 * the download route of both APIs. A failure without stored bytes, or a server without an object
 * store, answers `not_found`. With `downloadUrl` answering a URL, a 302 to it instead.
 */
export async function sendResultBytes(
  reply: FastifyReply,
  result: ResultView,
  openResult: ((sha256: string) => Promise<Readable>) | undefined,
  downloadUrl?: (sha256: string) => Promise<string | undefined>,
): Promise<FastifyReply> {
  if (!result.sha256 || !openResult) {
    throw new AthanorError('not_found', `result '${result.id}' has no stored bytes`);
  }
  // Handed to the object store (a presigned URL) when configured: the bytes bypass the API.
  const presigned = await downloadUrl?.(result.sha256);
  if (presigned !== undefined) {
    void reply.header('x-athanor-sha256', result.sha256);
    return reply.redirect(presigned, 302);
  }
  const stream = await openResult(result.sha256);
  void reply.header('content-type', 'application/octet-stream').header('x-athanor-sha256', result.sha256);
  if (result.sizeBytes !== null) void reply.header('content-length', String(result.sizeBytes));
  return reply.send(stream);
}
