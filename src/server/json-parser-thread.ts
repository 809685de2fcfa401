import { setImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { JsonParseOutcome } from './json-text.js';
import { jsonNestsDeeperThan, parseJsonText } from './json-text.js';

/** Items of one array handed back per message: each is copied into the event loop's heap in one go. */
const sliceItems = 500;

// The thread parses with the same functions as the event loop (from their source text), keeps
// the value and hands it back in slices, one when asked: a message holding 100,000 objects would
// cost the event loop as long to copy in as the parse itself. The value goes back as a shell
// (the body with its long arrays emptied) and then the items of those arrays.
const threadSource = `
const { parentPort } = require('node:worker_threads');
const jsonNestsDeeperThan = ${jsonNestsDeeperThan.toString()};
const parseJsonText = ${parseJsonText.toString()};
const sliceItems = ${sliceItems};
const held = new Map();
function* slices(value) {
  const arrays = Array.isArray(value) ? [[null, value]] : Object.entries(value).filter(([, v]) => Array.isArray(v));
  for (const [key, items] of arrays) {
    if (items.length <= sliceItems) continue;
    for (let i = 0; i < items.length; i += sliceItems) yield { key, items: items.slice(i, i + sliceItems) };
  }
}
parentPort.on('message', (message) => {
  const { id } = message;
  if (message.type === 'parse') {
    const bytes = message.bytes;
    const outcome = parseJsonText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(), message.maxDepth);
    if (!('value' in outcome) || outcome.value === null || typeof outcome.value !== 'object') {
      parentPort.postMessage({ id, outcome });
      return;
    }
    const value = outcome.value;
    let shell;
    if (Array.isArray(value)) shell = value.length > sliceItems ? [] : value;
    else {
      shell = { ...value };
      for (const [key, v] of Object.entries(value)) if (Array.isArray(v) && v.length > sliceItems) shell[key] = [];
    }
    held.set(id, slices(value));
    parentPort.postMessage({ id, shell });
  } else if (message.type === 'next') {
    const next = held.get(id).next();
    if (next.done) held.delete(id);
    parentPort.postMessage({ id, slice: next.done ? undefined : next.value });
  }
});
`;

interface Pending {
  readonly bytes: Buffer;
  readonly maxDepth: number;
  readonly resolve: (outcome: JsonParseOutcome) => void;
  shell?: Record<string, unknown[]> | unknown[];
}

type ThreadMessage =
  | { readonly id: number; readonly outcome: JsonParseOutcome }
  | { readonly id: number; readonly shell: Record<string, unknown[]> | unknown[] }
  | {
      readonly id: number;
      readonly slice: { readonly key: string | null; readonly items: unknown[] } | undefined;
    };

/**
 * Parses large JSON bodies in a thread of its own, started on first use and kept until `close`.
 * Should the thread fail, the bodies it held are parsed on the event loop: slower, never lost.
 */
export class JsonParserThread {
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, Pending>();

  parse(bytes: Buffer, maxDepth: number): Promise<JsonParseOutcome> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      this.#pending.set(id, { bytes, maxDepth, resolve });
      this.#thread().postMessage({ type: 'parse', id, bytes, maxDepth });
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
    this.#parseHere();
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(threadSource, { eval: true });
    worker.unref();
    worker.on('message', (message: ThreadMessage) => void this.#received(worker, message));
    const failed = () => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#parseHere();
    };
    worker.on('error', failed);
    worker.on('exit', failed);
    this.#worker = worker;
    return worker;
  }

  async #received(worker: Worker, message: ThreadMessage): Promise<void> {
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    if ('outcome' in message) {
      this.#pending.delete(message.id);
      pending.resolve(message.outcome);
      return;
    }
    if ('shell' in message) pending.shell = message.shell;
    else if (message.slice === undefined) {
      this.#pending.delete(message.id);
      pending.resolve({ value: pending.shell });
      return;
    } else {
      const { key, items } = message.slice;
      const shell = pending.shell as Record<string, unknown[]> & unknown[];
      const target = key === null ? shell : shell[key];
      for (const item of items) target?.push(item);
      // Other requests run between two slices.
      await setImmediate();
    }
    if (this.#worker === worker) worker.postMessage({ type: 'next', id: message.id });
  }

  /** Bodies the thread can no longer answer for, parsed on the event loop. */
  #parseHere(): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.resolve(parseJsonText(pending.bytes.toString(), pending.maxDepth));
    }
  }
}
