import { createReadStream, createWriteStream, mkdtempSync, type WriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** Default cap on one attempt's log: 16 MiB. */
export const defaultMaxLogBytes = 16 * 1024 * 1024;

/** Where a log line came from: the executor's `context.log`, or a program's output streams. */
export type LogSource = 'log' | 'stdout' | 'stderr';

/** The line that ends a log cut at its cap, so a reader never mistakes it for the whole. */
export function truncationMarker(maxBytes: number, droppedBytes: number): string {
  return `[athanor] log truncated at ${maxBytes} bytes: ${droppedBytes} more bytes were dropped\n`;
}

/** Text of one structured `context.log` line: the message, then its fields as JSON. */
function logLine(message: unknown, fields: unknown): string {
  const text = typeof message === 'string' ? message : JSON.stringify(message);
  return fields === undefined ? text : `${text} ${JSON.stringify(fields)}`;
}

/**
 * One attempt's log, spooled to a temporary file as it is written (never held in memory) and cut
 * at `maxBytes`, with a marker saying how much was dropped. Lines are
 * `<ISO time> <source> <text>`; output of a program is split at its newlines.
 */
export class TaskLog {
  #file: WriteStream | undefined;
  #dir: string | undefined;
  #writtenBytes = 0;
  #droppedBytes = 0;
  /** How much of the log the server holds already (sent live with heartbeats). */
  #sentBytes = 0;
  readonly #partial = new Map<LogSource, string>();
  #closed = false;

  constructor(readonly maxBytes: number = defaultMaxLogBytes) {}

  /** Bytes kept so far (the marker not counted). */
  get sizeBytes(): number {
    return this.#writtenBytes;
  }

  get truncated(): boolean {
    return this.#droppedBytes > 0;
  }

  /** A structured line from the executor: a message and optional JSON fields. */
  log(message: unknown, fields?: unknown): void {
    this.#line('log', logLine(message, fields));
  }

  /** Raw output of a program; whole lines are written, the rest waits for its newline. */
  capture(source: 'stdout' | 'stderr', chunk: Buffer | string): void {
    const text = (this.#partial.get(source) ?? '') + chunk.toString();
    const lines = text.split('\n');
    this.#partial.set(source, lines.pop() ?? '');
    for (const line of lines) this.#line(source, line);
  }

  #line(source: LogSource, text: string): void {
    if (this.#closed) return;
    const line = `${new Date().toISOString()} ${source} ${text}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.#droppedBytes > 0 || this.#writtenBytes + bytes > this.maxBytes) {
      this.#droppedBytes += bytes;
      return;
    }
    this.#writtenBytes += bytes;
    this.#open().write(line);
  }

  #open(): WriteStream {
    if (!this.#file) {
      // Synchronous once per logging attempt; the stream buffers writes until its file is open.
      this.#dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-log-'));
      this.#file = createWriteStream(path.join(this.#dir, 'log'));
    }
    return this.#file;
  }

  /**
   * What the log gained since the last {@link markSent}, from the spooled file: at most
   * `maxBytes`, whole lines (a line longer than that is cut at a character boundary), or undefined
   * when nothing new is on disk yet. The uploaded log starts with the same bytes.
   */
  async unsent(maxBytes: number): Promise<{ offsetBytes: number; text: string } | undefined> {
    const stream = this.#file;
    if (!stream || this.#closed) return undefined;
    const offsetBytes = this.#sentBytes;
    const length = Math.min(stream.bytesWritten - offsetBytes, maxBytes);
    if (length <= 0) return undefined;
    const buffer = Buffer.alloc(length);
    let read: number;
    try {
      const file = await open(path.join(this.#dir as string, 'log'), 'r');
      try {
        ({ bytesRead: read } = await file.read(buffer, 0, length, offsetBytes));
      } finally {
        await file.close();
      }
    } catch {
      return undefined; // finished and disposed meanwhile: the upload carries it
    }
    let end = buffer.lastIndexOf(0x0a, read - 1) + 1;
    if (end === 0 && read === maxBytes) {
      end = read;
      // Never split a UTF-8 sequence: back up over continuation bytes to the character's start.
      while (end > 0 && (buffer[end - 1]! & 0xc0) === 0x80) end--;
      if (end > 0 && buffer[end - 1]! >= 0xc0) end--;
    }
    if (end === 0) return undefined;
    return { offsetBytes, text: buffer.subarray(0, end).toString('utf8') };
  }

  /** The server now holds the log's first `bytes` bytes. */
  markSent(bytes: number): void {
    this.#sentBytes = Math.max(this.#sentBytes, bytes);
  }

  /**
   * Ends the log: flushes unterminated output, adds the truncation marker when something was
   * dropped, and answers the log's bytes as a stream factory (each call a fresh stream, so an
   * upload can be retried), or undefined when nothing was written.
   */
  async finish(): Promise<(() => Readable) | undefined> {
    if (this.#closed) throw new Error('the log was already finished');
    for (const [source, rest] of this.#partial) if (rest !== '') this.#line(source, rest);
    this.#partial.clear();
    if (this.#droppedBytes > 0) this.#open().write(truncationMarker(this.maxBytes, this.#droppedBytes));
    this.#closed = true;
    const stream = this.#file;
    if (!stream) return undefined;
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.end(() => resolve());
    });
    const file = path.join(this.#dir as string, 'log');
    return () => createReadStream(file);
  }

  /** Deletes the spooled file. */
  async dispose(): Promise<void> {
    this.#closed = true;
    const stream = this.#file;
    if (stream && !stream.writableEnded) await new Promise<void>((resolve) => stream.end(() => resolve()));
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }
}
