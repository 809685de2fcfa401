import { createRequire } from 'node:module';
import { setImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { JsonParseOutcome } from './json-text.js';
import { jsonNestsDeeperThan, parseJsonText } from './json-text.js';
import { bodyAjvOptions } from './validation.js';

/** Items of one array handed back per message: each is copied into the event loop's heap in one go. */
const sliceItems = 500;

// The thread parses with the same functions as the event loop (from their source text), keeps
// the value and hands it back in slices, one when asked: a message holding 100,000 objects would
// cost the event loop as long to copy in as the parse itself. The value goes back as a shell
// (the body with its long arrays emptied) and then the items of those arrays. Given the route's
// body schema, it first checks the value with the validator Fastify would build (same compiler,
// same options): checking 100,000 transformations held the event loop for up to a quarter of a
// second. A body that fails goes back as its errors alone.
const threadSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { AjvCompiler } = require(workerData.ajvCompilerPath);
const buildCompiler = AjvCompiler();
const validators = new Map();
function validatorFor(schemaText) {
  let validate = validators.get(schemaText);
  if (validate === undefined) {
    const compile = buildCompiler({}, { customOptions: workerData.bodyAjvOptions });
    validate = compile({ schema: JSON.parse(schemaText), method: 'POST', url: '', httpPart: 'body' });
    if (validators.size >= 100) validators.clear();
    validators.set(schemaText, validate);
  }
  return validate;
}
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
    if (message.schema !== undefined) {
      const validate = validatorFor(message.schema);
      if (!validate(value)) {
        parentPort.postMessage({ id, schemaErrors: validate.errors });
        return;
      }
    }
    let shell;
    if (Array.isArray(value)) shell = value.length > sliceItems ? [] : value;
    else {
      shell = { ...value };
      for (const [key, v] of Object.entries(value)) if (Array.isArray(v) && v.length > sliceItems) shell[key] = [];
    }
    held.set(id, slices(value));
    parentPort.postMessage({ id, shell, validated: message.schema !== undefined });
  } else if (message.type === 'next') {
    const next = held.get(id).next();
    if (next.done) held.delete(id);
    parentPort.postMessage({ id, slice: next.done ? undefined : next.value });
  }
});
`;

/**
 * What the thread made of a body: the parse outcome, with `validated` when the value was checked
 * against the schema and passed; or the schema's errors (Ajv's) when it failed.
 */
export type ThreadParseOutcome =
  (JsonParseOutcome & { readonly validated?: boolean }) | { readonly schemaErrors: readonly unknown[] };

interface Pending {
  readonly bytes: Buffer;
  readonly maxDepth: number;
  readonly resolve: (outcome: ThreadParseOutcome) => void;
  shell?: Record<string, unknown[]> | unknown[];
  validated?: boolean;
}

type ThreadMessage =
  | { readonly id: number; readonly outcome: JsonParseOutcome }
  | { readonly id: number; readonly schemaErrors: readonly unknown[] }
  | {
      readonly id: number;
      readonly shell: Record<string, unknown[]> | unknown[];
      readonly validated: boolean;
    }
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

  /** Parses `bytes`; with `schema` (JSON Schema text), checks the value against it as well. */
  parse(bytes: Buffer, maxDepth: number, schema?: string): Promise<ThreadParseOutcome> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      this.#pending.set(id, { bytes, maxDepth, resolve });
      this.#thread().postMessage({ type: 'parse', id, bytes, maxDepth, schema });
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
    const worker = new Worker(threadSource, {
      eval: true,
      workerData: {
        ajvCompilerPath: createRequire(import.meta.url).resolve('@fastify/ajv-compiler'),
        bodyAjvOptions,
      },
    });
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
    if ('outcome' in message || 'schemaErrors' in message) {
      this.#pending.delete(message.id);
      pending.resolve('outcome' in message ? message.outcome : { schemaErrors: message.schemaErrors });
      return;
    }
    if ('shell' in message) {
      pending.shell = message.shell;
      pending.validated = message.validated;
    } else if (message.slice === undefined) {
      this.#pending.delete(message.id);
      pending.resolve({ value: pending.shell, validated: pending.validated === true });
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

  /** Bodies the thread can no longer answer for, parsed on the event loop (and checked there). */
  #parseHere(): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.resolve(parseJsonText(pending.bytes.toString(), pending.maxDepth));
    }
  }
}
