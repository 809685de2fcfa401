import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PassThrough, Transform, pipeline } from 'node:stream';

/**
 * Pipes `source` through `transforms` and returns the readable end. An error anywhere destroys
 * every stream, so whoever reads the end sees it.
 */
export function chain(source: Readable, ...transforms: Transform[]): Readable {
  const end = new PassThrough();
  pipeline([source, ...transforms, end], () => {});
  return end;
}

/** A pass-through that measures the bytes flowing through it. */
export class ByteMeter extends Transform {
  private readonly hash = createHash('sha256');
  sizeBytes = 0;
  private digest: string | undefined;

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null, data?: Buffer) => void,
  ): void {
    this.hash.update(chunk);
    this.sizeBytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: () => void): void {
    this.digest = this.hash.digest('hex');
    callback();
  }

  /** The sha256 of everything that passed; only after the stream ended. */
  get sha256(): string {
    if (this.digest === undefined) throw new Error('ByteMeter read before its stream ended');
    return this.digest;
  }
}

/** Yields the lines of a UTF-8 stream (without their `\n`); every line must end with one. */
export async function* lines(stream: Readable): AsyncGenerator<string> {
  let rest = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = rest + chunk;
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) yield part;
  }
  if (rest !== '') throw new Error('the last line has no line break (the file was cut short)');
}
