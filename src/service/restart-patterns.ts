import { createRequire } from 'node:module';
import { setImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { RE2JS } from 're2js';
import { AthanorError } from '../domain/errors.js';

/** The longest restart pattern accepted (the API schema says the same). */
export const maxPatternLength = 1000;

/**
 * Restart policy patterns are RE2 regular expressions, matched anywhere in the failure text
 * (anchor with `^` and `$` to match all of it). RE2 runs in time linear in the text whatever the
 * pattern, so neither a user's pattern nor a failure text can stall the server; it has no
 * backreferences and no lookaround, and a pattern that uses them is refused at submission. The
 * engine is re2js, RE2 in plain JavaScript: nothing to compile on install (bench/README.md
 * compares it with the native addon and the WebAssembly build).
 */
export function compileRestartPattern(pattern: string): RE2JS {
  // Compiled here only to check it; matching happens on the matcher thread below.
  if (pattern.length === 0 || pattern.length > maxPatternLength) {
    throw new AthanorError(
      'validation_failed',
      `a restart pattern has 1 to ${maxPatternLength} characters, this one has ${pattern.length}`,
    );
  }
  try {
    return RE2JS.compile(pattern);
  } catch (cause) {
    throw new AthanorError(
      'validation_failed',
      `restart pattern '${pattern}' is not a valid RE2 regular expression (${(cause as Error).message}); ` +
        'backreferences and lookaround are not supported',
      { cause },
    );
  }
}

/**
 * Checks patterns at submission; the first bad one is refused with 400. Compiling takes about a
 * millisecond a pattern in re2js, so other requests run between two.
 */
export async function checkRestartPatterns(patterns: readonly string[]): Promise<void> {
  for (const pattern of patterns) {
    compileRestartPattern(pattern);
    await setImmediate();
  }
}

/** A match that runs longer than this counts as no match (the task then fails as `error`). */
export const matchTimeoutMs = 250;

// The matcher thread: RE2 is linear in the text, but a pattern whose DFA blows up still costs
// milliseconds to tens of milliseconds on 64 KiB; off the event loop, and with a deadline, it
// costs nothing to other requests.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { RE2JS } = require(workerData.enginePath);
const cache = new Map();
parentPort.on('message', ({ id, patterns, text }) => {
  const matched = [];
  for (const pattern of patterns) {
    let expression = cache.get(pattern);
    if (expression === undefined) {
      try { expression = RE2JS.compile(pattern); } catch { expression = null; }
      if (cache.size >= 1000) cache.clear();
      cache.set(pattern, expression);
    }
    if (expression !== null && expression.test(text)) matched.push(pattern);
  }
  parentPort.postMessage({ id, matched });
});
`;

interface PendingMatch {
  readonly patterns: readonly string[];
  readonly text: string;
  readonly timeoutMs: number;
  readonly resolve: (matched: ReadonlySet<string>) => void;
  timer?: NodeJS.Timeout;
}

class MatcherThread {
  #worker: Worker | undefined;
  #online = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, PendingMatch>();

  match(patterns: readonly string[], text: string, timeoutMs: number): Promise<ReadonlySet<string>> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      const pending: PendingMatch = { patterns, text, timeoutMs, resolve };
      this.#pending.set(id, pending);
      this.#post(id, pending);
    });
  }

  #post(id: number, pending: PendingMatch): void {
    clearTimeout(this.#idleTimer);
    const worker = this.#thread();
    // The deadline is for the match, not for starting the thread.
    if (this.#online) this.#startDeadline(id, pending);
    worker.postMessage({ id, patterns: pending.patterns, text: pending.text });
  }

  #startDeadline(id: number, pending: PendingMatch): void {
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => this.#timedOut(id), pending.timeoutMs);
    pending.timer.unref();
  }

  /** An idle thread only holds memory: stop it once idle. */
  #whenIdle(): void {
    if (this.#pending.size > 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#pending.size > 0 || !this.#worker) return;
      void this.#worker.terminate();
      this.#worker = undefined;
    }, 1000);
    this.#idleTimer.unref();
  }

  #timedOut(id: number): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    pending.resolve(new Set());
    // The thread may be stuck in that match: replace it and hand it the others again.
    void this.#worker?.terminate();
    this.#worker = undefined;
    for (const [otherId, other] of this.#pending) this.#post(otherId, other);
    this.#whenIdle();
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: { enginePath: createRequire(import.meta.url).resolve('re2js') },
    });
    worker.unref();
    this.#online = false;
    worker.on('online', () => {
      if (this.#worker !== worker) return;
      this.#online = true;
      for (const [id, pending] of this.#pending) this.#startDeadline(id, pending);
    });
    worker.on('message', ({ id, matched }: { id: number; matched: string[] }) => {
      const pending = this.#pending.get(id);
      if (!pending) return;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.resolve(new Set(matched));
      this.#whenIdle();
    });
    worker.on('error', () => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      // A thread that cannot run (the engine failed to load?) must not loop: nothing matches.
      for (const [id, pending] of this.#pending) {
        clearTimeout(pending.timer);
        this.#pending.delete(id);
        pending.resolve(new Set());
      }
    });
    this.#worker = worker;
    return worker;
  }
}

const matcher = new MatcherThread();

/**
 * The patterns the failure text matches, found on a separate thread within `timeoutMs`; a
 * pattern that does not compile (stored before validation) matches nothing, and when the deadline
 * passes none of them match.
 */
export function matchRestartPatterns(
  patterns: readonly string[],
  text: string,
  timeoutMs = matchTimeoutMs,
): Promise<ReadonlySet<string>> {
  if (patterns.length === 0) return Promise.resolve(new Set());
  return matcher.match([...new Set(patterns)], text, timeoutMs);
}
