import type { Readable } from 'node:stream';
import { AthanorError } from '../domain/errors.js';

/** The error a write throws when its signal aborts: named `AbortError`, the reason as `cause`. */
export function abortError(signal: AbortSignal): Error {
  const error = new Error('the write was aborted; nothing was stored', { cause: signal.reason });
  error.name = 'AbortError';
  return error;
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw new AthanorError('invalid_argument', 'an object body must yield bytes (Buffer or string chunks)');
}

/**
 * The body's chunks as Buffers. When `signal` aborts, iteration fails at once with `abortError`
 * and the body is destroyed, even when the body is stalled waiting on its producer: destroying a
 * stalled stream alone does not wake a reader that is waiting on it.
 */
export async function* bodyChunks(body: Readable, signal?: AbortSignal): AsyncGenerator<Buffer> {
  if (signal?.aborted) {
    body.destroy();
    throw abortError(signal);
  }
  const iterator = body[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted =
    signal &&
    new Promise<never>((_, reject) => {
      onAbort = () => {
        const error = abortError(signal);
        body.destroy(error);
        reject(error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  aborted?.catch(() => {});
  try {
    for (;;) {
      const next = await (aborted ? Promise.race([iterator.next(), aborted]) : iterator.next());
      if (next.done) return;
      yield toBuffer(next.value);
    }
  } finally {
    if (signal && onAbort) signal.removeEventListener('abort', onAbort);
    // Stopped early (an error, an abort, or a reader that gave up): release the body's resources.
    if (!body.readableEnded) body.destroy();
  }
}
