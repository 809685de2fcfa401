import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Claim } from '../client/compute-client.js';
import { ComputeClient } from '../client/compute-client.js';
import type { ClientOptions } from '../client/http-client.js';
import { AthanorError, isAthanorError } from '../domain/errors.js';
import { maxLogAppendBytes } from '../domain/live-log.js';
import type { Progress } from '../domain/progress.js';
import { progressFrom } from '../domain/progress.js';
import type { Executor } from './protocols.js';
import { failureText } from './protocols.js';
import { TaskLog } from './task-log.js';

/**
 * Refusals of a result that sending it again cannot change: the lease is gone, the task is out of
 * reach, or the lease already recorded another result. The service logs them and drops the result.
 */
const refusedForGood: ReadonlySet<string> = new Set(['stale_lease', 'not_found', 'result_conflict']);

export interface ComputeServiceOptions extends ClientOptions {
  readonly name?: string;
  readonly protocols: ReadonlyMap<string, Executor>;
  /** Tasks run at once; default 1. */
  readonly concurrency?: number;
  /** Only claim tasks in these scopes (intersected with the identity's). */
  readonly scopes?: readonly string[];
  /** How long a claim waits for work on the server; default 5000 ms. */
  readonly claimWaitMs?: number;
  /** On stop, how long tasks in flight may finish before they are released; default 30000 ms. */
  readonly stopGraceMs?: number;
  /** Never claim tasks in these scopes. */
  readonly excludeScopes?: readonly string[];
  /** Claim this many tasks in all, let them finish, then stop; default: no limit. */
  readonly maxTasks?: number;
  /** Stop claiming after this long, then stop as on SIGTERM; default: no limit. */
  readonly maxTimeMs?: number;
  /** Exit after this long with nothing to run (no task held, none claimed); default: never. */
  readonly maxIdleMs?: number;
  /** Set when a compute manager started this service: registered under its manager and launch. */
  readonly managed?: { readonly manager: string; readonly launch: string };
  /**
   * How long a result or log upload keeps retrying while the server is unreachable before the
   * service gives up with `server_unreachable` (the lease then simply expires); default 600000 ms.
   */
  readonly uploadRetryMs?: number;
  /** Cap on one attempt's log; default 16 MiB, truncation is marked in the log. */
  readonly maxLogBytes?: number;
  readonly log?: (message: string) => void;
}

/**
 * Waits `ms`, or less when `signal` aborts or `cancel()` is called; its abort listener goes away
 * as soon as the wait ends, however it ends (the signals it listens on live as long as the service).
 */
function pause(ms: number, signal?: AbortSignal): { done: Promise<void>; cancel: () => void } {
  let cancel = () => {};
  const done = new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    signal?.addEventListener('abort', finish, { once: true });
    cancel = finish;
  });
  return { done, cancel };
}

const sleep = (ms: number, signal?: AbortSignal) => pause(ms, signal).done;

/** Results up to this size are reported with the next claim, in one request; larger ones stream. */
const batchedResultBytes = 64 * 1024;
/** One request carries at most this many result bytes (well within the server's body limit). */
const batchBytes = 4 * 1024 * 1024;
const batchResults = 1000;
/** One heartbeat carries at most this many bytes of live logs in all (well within the body limit). */
const heartbeatLogBytes = 4 * 1024 * 1024;

/** A finished task's result waiting for the next exchange; its task stays in flight until then. */
interface PendingResult {
  readonly claim: Claim;
  readonly outcome: 'ok' | 'failed';
  readonly body: Buffer;
  /** When it was queued: it is given up `uploadRetryMs` later while the server stays unreachable. */
  readonly queuedAt: number;
  readonly settle: (error?: unknown) => void;
}

/**
 * Retries back off up to this, so work resumes within about 2 s of a server or database coming
 * back (the platform promises 5 s); while it is away a service sends one request per 2 s at most.
 */
const maxBackoffMs = 2_000;

/** How long an upload retries while the server is unreachable, by default: ten minutes. */
export const defaultUploadRetryMs = 600_000;

const unreachable = (error: unknown) =>
  isAthanorError(error) &&
  (error.code === 'server_unreachable' || error.code === 'maintenance' || error.status >= 500);

/** Turns what an executor returned into bytes to upload. */
function toBody(value: unknown): Readable | Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Readable) return value;
  if (typeof value === 'string') return Buffer.from(value);
  return Buffer.from(JSON.stringify(value ?? null));
}

interface InFlight {
  readonly claim: Claim;
  readonly abort: AbortController;
  done: Promise<void>;
  /** The executor's last progress report, and whether a heartbeat has carried it yet. */
  progress?: Progress;
  progressSent: boolean;
  /** The attempt's log, whose new lines each heartbeat carries. */
  log?: TaskLog;
}

/**
 * A compute service: registers, heartbeats, claims, executes, reports. When the server is
 * unreachable it backs off and retries, so a server restart loses no task. `stop()` stops
 * claiming, lets tasks in flight finish (or releases them after the grace period) and deregisters.
 */
export class ComputeService {
  readonly client: ComputeClient;
  #serviceId: string | undefined;
  readonly #inFlight = new Map<string, InFlight>();
  /** Tasks claimed since start, for `maxTasks`. */
  #claimed = 0;
  /** What stops the service with an error: a refused claim, or a report it could not deliver. */
  #fatal: { error: unknown } | undefined;
  readonly #stopping = new AbortController();
  /** Aborted once nothing is in flight any more after a stop: ends the heartbeat loop. */
  readonly #drained = new AbortController();
  #finished: Promise<void> | undefined;
  #pending: PendingResult[] = [];
  /** Set when a heartbeat answer says the manager scales in: claim nothing more, finish, exit. */
  #drainRequested = false;
  /** When the service last held or claimed work, for `maxIdleMs`. */
  #busyAt = Date.now();
  /** Set once no claim follows: results are then uploaded one by one instead of queued. */
  #claimsEnded = false;
  /** Wakes the claim loop when a result is queued while every slot is busy. */
  #resultQueued = () => {};
  completed = 0;
  failed = 0;

  constructor(private readonly options: ComputeServiceOptions) {
    this.client = new ComputeClient(options);
  }

  get serviceId(): string | undefined {
    return this.#serviceId;
  }

  #log(message: string): void {
    this.options.log?.(message);
  }

  /** Runs until `stop()`; resolves once deregistered. */
  start(): Promise<void> {
    this.#finished ??= this.#run();
    return this.#finished;
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#finished;
  }

  async #register(): Promise<void> {
    for (let delay = 500; !this.#stopping.signal.aborted; delay = Math.min(delay * 2, maxBackoffMs)) {
      try {
        const registration = await this.client.register(
          this.options.name ?? `athanor-compute@${os.hostname()}`,
          os.hostname(),
          this.options.managed,
        );
        this.#serviceId = registration.id;
        this.#heartbeatEveryMs = Math.max(200, Math.floor(registration.leaseTtlMs / 4));
        this.#log(`registered as ${registration.id}`);
        return;
      } catch (error) {
        if (!unreachable(error)) throw error;
        this.#log(`server unreachable (${(error as Error).message}); retrying in ${delay} ms`);
        await sleep(delay, this.#stopping.signal);
      }
    }
  }

  #heartbeatEveryMs = 30_000;

  #turn: Promise<void> = Promise.resolve();

  /**
   * Claims and heartbeats take turns. A heartbeat lists the leases this service holds and the
   * server releases the others, so a claim answered while a heartbeat is on its way would be
   * released by it.
   */
  #oneAtATime<T>(call: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(call);
    this.#turn = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  async #heartbeatLoop(): Promise<void> {
    while (!this.#drained.signal.aborted) {
      await sleep(this.#heartbeatEveryMs, this.#drained.signal);
      if (!this.#serviceId || this.#drained.signal.aborted) continue;
      try {
        const serviceId = this.#serviceId;
        const reported = new Map<InFlight, Progress>();
        const logs = await this.#unsentLogs();
        const { leases, drain } = await this.#oneAtATime(() =>
          this.client.heartbeat(
            serviceId,
            [...this.#inFlight.values()].map((run) => {
              const { claim, progress } = run;
              const log = logs.get(run);
              const held = {
                task: claim.task,
                leaseToken: claim.leaseToken,
                ...(log ? { log: { offset: log.offsetBytes, text: log.text } } : {}),
              };
              // Only what changed since the last heartbeat: one progress write per heartbeat at most.
              if (!progress || run.progressSent) return held;
              reported.set(run, progress);
              return { ...held, progress };
            }),
          ),
        );
        if (drain && !this.#drainRequested) {
          this.#drainRequested = true;
          this.#log('the manager scales in (drain): finishing the tasks held, then stopping');
          this.#resultQueued();
        }
        for (const [run, progress] of reported) if (run.progress === progress) run.progressSent = true;
        for (const [run, log] of logs) run.log?.markSent(log.offsetBytes + Buffer.byteLength(log.text));
        const held = new Set(leases.map((l) => `${l.task}:${l.leaseToken}`));
        for (const [task, run] of this.#inFlight) {
          // A lease that expired anyway belongs to someone else now: stop working on it.
          if (!held.has(`${task}:${run.claim.leaseToken}`)) run.abort.abort();
        }
      } catch (error) {
        if (isAthanorError(error) && error.code === 'stale_lease') {
          for (const run of this.#inFlight.values()) run.abort.abort();
          if (!this.#stopping.signal.aborted) await this.#register();
        } else if (!unreachable(error)) {
          this.#log(`heartbeat failed: ${(error as Error).message}`);
        }
      }
    }
  }

  /** What each running attempt's log gained since the last heartbeat, within the heartbeat's bounds. */
  async #unsentLogs(): Promise<Map<InFlight, { offsetBytes: number; text: string }>> {
    const runs = [...this.#inFlight.values()];
    const found = await Promise.all(runs.map((run) => run.log?.unsent(maxLogAppendBytes)));
    const logs = new Map<InFlight, { offsetBytes: number; text: string }>();
    let bytes = 0;
    for (const [i, log] of found.entries()) {
      if (!log) continue;
      bytes += Buffer.byteLength(log.text);
      // The rest waits for the next heartbeat.
      if (bytes > heartbeatLogBytes) break;
      logs.set(runs[i]!, log);
    }
    return logs;
  }

  async #run(): Promise<void> {
    await this.#register();
    const heartbeats = this.#heartbeatLoop();
    const concurrency = this.options.concurrency ?? 1;
    const protocols = [...this.options.protocols.keys()];
    let backoff = 500;
    const maxTime = this.options.maxTimeMs;
    const timeUp = maxTime === undefined ? undefined : pause(maxTime, this.#stopping.signal);
    void timeUp?.done.then(() => {
      if (this.#stopping.signal.aborted) return;
      this.#log(`ran for ${maxTime} ms (--max-time): no new claims`);
      this.#stopping.abort();
    });
    this.#busyAt = Date.now();
    while (!this.#stopping.signal.aborted) {
      if (this.#inFlight.size > 0 || this.#pending.length > 0) this.#busyAt = Date.now();
      const idleMs = Date.now() - this.#busyAt;
      if (this.options.maxIdleMs !== undefined && idleMs >= this.options.maxIdleMs) {
        this.#log(`nothing to run for ${idleMs} ms (--max-idle): stopping`);
        break;
      }
      const left = this.#drainRequested ? 0 : (this.options.maxTasks ?? Infinity) - this.#claimed;
      if (left <= 0) {
        this.#log(
          this.#drainRequested
            ? 'drained: finishing the tasks held, then stopping'
            : `claimed ${this.#claimed} task(s) (--max-tasks): finishing them, then stopping`,
        );
        // No claim will carry the results still to come: each goes out on its own.
        this.#claimsEnded = true;
        this.#uploadEach(this.#pending.splice(0));
        await this.#finishInFlight();
        break;
      }
      // A task whose result waits to be reported frees its slot: the same request reports it.
      const free = Math.min(concurrency - this.#inFlight.size + this.#pending.length, left);
      if (free <= 0) {
        const idle = pause(1000, this.#stopping.signal);
        this.#resultQueued = idle.cancel;
        await Promise.race([...[...this.#inFlight.values()].map((r) => r.done), idle.done]);
        idle.cancel();
        continue;
      }
      const results = this.#nextBatch();
      try {
        await this.#oneAtATime(async () => {
          const claim = {
            count: free,
            protocols,
            // A heartbeat waits for the claim: a long wait must not outlast the leases in flight,
            // nor the idle limit.
            waitMs: Math.min(
              this.options.claimWaitMs ?? 5000,
              this.#heartbeatEveryMs,
              Math.max(0, (this.options.maxIdleMs ?? Infinity) - (Date.now() - this.#busyAt)),
            ),
            ...(this.options.scopes?.length ? { scopes: [...this.options.scopes] } : {}),
            ...(this.options.excludeScopes?.length ? { excludeScopes: [...this.options.excludeScopes] } : {}),
          };
          const serviceId = this.#serviceId as string;
          const claims = results.length
            ? await this.#exchange(serviceId, results, claim)
            : await this.client.claim(serviceId, claim);
          this.#claimed += claims.length;
          if (claims.length > 0) this.#busyAt = Date.now();
          for (const claimed of claims) this.#execute(claimed);
        });
        backoff = 500;
      } catch (error) {
        // Unreported results go out with the next request, or one by one when batches are refused.
        if (isAthanorError(error) && error.code === 'maintenance') this.#uploadEach(results);
        else this.#pending.unshift(...results);
        if (unreachable(error)) this.#giveUpStalePending(error);
        if (isAthanorError(error) && error.code === 'stale_lease') {
          await this.#register();
        } else if (unreachable(error)) {
          this.#log(`claim failed (${(error as Error).message}); retrying in ${backoff} ms`);
          await sleep(backoff, this.#stopping.signal);
          backoff = Math.min(backoff * 2, maxBackoffMs);
        } else {
          // A refusal that retrying cannot fix: stop as on SIGTERM, then report it.
          this.#fatal ??= { error };
          this.#stopping.abort();
        }
      }
    }
    this.#claimsEnded = true;
    this.#uploadEach(this.#pending.splice(0));
    timeUp?.cancel();
    await this.#drain();
    this.#drained.abort();
    await heartbeats;
    if (this.#serviceId) {
      await this.client
        .deregister(this.#serviceId)
        .catch((error: unknown) => this.#log(`deregister failed: ${(error as Error).message}`));
      this.#log(`deregistered ${this.#serviceId}`);
    }
    if (this.#fatal) throw this.#fatal.error;
  }

  /** Waits until nothing is in flight, or until `stop()` (which then drains with its grace period). */
  async #finishInFlight(): Promise<void> {
    while (this.#inFlight.size > 0 && !this.#stopping.signal.aborted) {
      const stopped = pause(2 ** 31 - 1, this.#stopping.signal);
      await Promise.race([Promise.all([...this.#inFlight.values()].map((r) => r.done)), stopped.done]);
      stopped.cancel();
    }
  }

  /** Lets tasks in flight finish within the grace period, then releases the rest. */
  async #drain(): Promise<void> {
    if (this.#inFlight.size === 0) return;
    this.#log(`stopping: waiting for ${this.#inFlight.size} task(s) in flight`);
    const all = Promise.all([...this.#inFlight.values()].map((r) => r.done));
    const grace = pause(this.options.stopGraceMs ?? 30_000);
    await Promise.race([all, grace.done]);
    grace.cancel();
    for (const [task, run] of this.#inFlight) {
      run.abort.abort();
      await this.client.release(task, run.claim.leaseToken).catch(() => {});
      this.#log(`released ${task}`);
    }
    await all;
  }

  #execute(claim: Claim): void {
    const run: InFlight = {
      claim,
      abort: new AbortController(),
      done: Promise.resolve(),
      progressSent: true,
    };
    // In the map before the executor starts: it may report progress at once.
    this.#inFlight.set(claim.task, run);
    run.done = this.#runTask(run)
      .catch((error: unknown) => {
        // Only a report that cannot be delivered gets here: stop, and say so on exit.
        this.#fatal ??= { error };
        this.#stopping.abort();
      })
      .finally(() => this.#inFlight.delete(claim.task));
  }

  async #runTask(run: InFlight): Promise<void> {
    const { claim, abort } = run;
    const signal = abort.signal;
    const executor = this.options.protocols.get(claim.transformation.protocol);
    const log = new TaskLog(this.options.maxLogBytes);
    run.log = log;
    let outcome: 'ok' | 'failed';
    let body: Readable | Buffer;
    try {
      try {
        if (!executor)
          throw new Error(`this compute service has no '${claim.transformation.protocol}' protocol`);
        const extended = claim.extends?.result ?? null;
        const value = await executor(claim.transformation.inputs, {
          task: claim.task,
          transformation: claim.transformation,
          previousResult: extended ? () => this.client.downloadResult(extended) : undefined,
          signal,
          log: (message, fields) => log.log(message, fields),
          progress: (first, second, note) => {
            run.progress = progressFrom(run.progress, first, second, note);
            run.progressSent = false;
          },
          capture: (source, chunk) => log.capture(source, chunk),
        });
        outcome = 'ok';
        body = toBody(value);
      } catch (error) {
        outcome = 'failed';
        const text = failureText(error);
        log.log(`task failed: ${text}`);
        body = Buffer.from(text);
      }
      if (signal.aborted) log.log('interrupted: the lease was revoked, lost or released');
      else await this.#report(claim, outcome, body);
    } finally {
      await this.#shipLog(claim, log);
    }
  }

  /** Uploads an attempt's log, whatever ended it; a log that cannot be delivered is dropped with a note. */
  async #shipLog(claim: Claim, log: TaskLog): Promise<void> {
    try {
      const body = await log.finish();
      if (!body) return;
      await this.#deliver(`the log of ${claim.task}`, () =>
        this.client.uploadLog(claim.task, claim.leaseToken, body()),
      );
    } catch (error) {
      this.#log(`log of ${claim.task} not uploaded: ${(error as Error).message}`);
    } finally {
      await log.dispose();
    }
  }

  /**
   * Reports a result, retrying while the server is unreachable; a stale lease drops it. A streamed
   * result is spooled to a temporary file first, so a retry can send it again without holding it
   * in memory.
   */
  async #report(claim: Claim, outcome: 'ok' | 'failed', body: Readable | Buffer): Promise<void> {
    if (
      Buffer.isBuffer(body) &&
      body.length <= batchedResultBytes &&
      !this.#stopping.signal.aborted &&
      !this.#claimsEnded
    ) {
      return new Promise((resolve, reject) => {
        const settle = (error?: unknown) => (error === undefined ? resolve() : reject(error));
        this.#pending.push({ claim, outcome, body, queuedAt: Date.now(), settle });
        this.#resultQueued();
      });
    }
    if (Buffer.isBuffer(body)) return this.#upload(claim, outcome, () => body);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'athanor-result-'));
    try {
      const file = path.join(dir, 'result');
      await pipeline(body, createWriteStream(file));
      return await this.#upload(claim, outcome, () => createReadStream(file));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Reports queued results and claims in one request; settles each result by its answer. */
  async #exchange(
    serviceId: string,
    results: readonly PendingResult[],
    claim: Parameters<ComputeClient['claim']>[1],
  ) {
    const answer = await this.client.exchange(serviceId, {
      results: results.map((r) => ({
        task: r.claim.task,
        leaseToken: r.claim.leaseToken,
        outcome: r.outcome,
        body: r.body,
      })),
      claim,
    });
    for (const [i, pending] of results.entries()) {
      const reported = answer.results[i];
      if (reported?.result) {
        if (pending.outcome === 'ok') this.completed++;
        else this.failed++;
        pending.settle();
      } else if (reported?.error && refusedForGood.has(reported.error.code)) {
        this.#log(`result of ${pending.claim.task} refused: ${reported.error.message}`);
        pending.settle();
      } else {
        const reason = reported?.error?.message ?? 'the server did not answer for it';
        pending.settle(new AthanorError('internal', `reporting ${pending.claim.task} failed: ${reason}`));
      }
    }
    return answer.claims;
  }

  /** The oldest queued results that fit in one request; the others wait for the next. */
  #nextBatch(): PendingResult[] {
    let bytes = 0;
    let count = 0;
    while (count < this.#pending.length && count < batchResults) {
      bytes += this.#pending[count]!.body.length;
      if (count > 0 && bytes > batchBytes) break;
      count += 1;
    }
    return this.#pending.splice(0, count);
  }

  #uploadEach(results: readonly PendingResult[]): void {
    for (const r of results)
      void this.#upload(r.claim, r.outcome, () => r.body).then(() => r.settle(), r.settle);
  }

  async #upload(claim: Claim, outcome: 'ok' | 'failed', body: () => Readable | Buffer): Promise<void> {
    try {
      await this.#deliver(`the result of ${claim.task}`, () =>
        this.client.submitResult(claim.task, claim.leaseToken, outcome, body()),
      );
      if (outcome === 'ok') this.completed++;
      else this.failed++;
    } catch (error) {
      if (isAthanorError(error) && refusedForGood.has(error.code)) {
        this.#log(`result of ${claim.task} refused: ${error.message}`);
        return;
      }
      if (isAthanorError(error) && error.code === 'server_unreachable') throw error;
      throw new AthanorError('internal', `reporting ${claim.task} failed: ${(error as Error).message}`);
    }
  }

  /** Queued results the server could not be reached for during `uploadRetryMs` fail as uploads do. */
  #giveUpStalePending(cause: unknown): void {
    const retryMs = this.options.uploadRetryMs ?? defaultUploadRetryMs;
    const stale = this.#pending.filter((r) => Date.now() - r.queuedAt >= retryMs);
    if (stale.length === 0) return;
    this.#pending = this.#pending.filter((r) => !stale.includes(r));
    for (const r of stale) r.settle(gaveUp(`the result of ${r.claim.task}`, retryMs, cause));
  }

  /**
   * Sends one upload, retrying with backoff while the server is unreachable, for at most
   * `uploadRetryMs`; then gives up with `server_unreachable`. Nothing is released on giving up:
   * the lease runs out on the server and the task runs again elsewhere.
   */
  async #deliver<T>(what: string, send: () => Promise<T>): Promise<T> {
    const retryMs = this.options.uploadRetryMs ?? defaultUploadRetryMs;
    const giveUpAt = Date.now() + retryMs;
    for (let delay = 500; ; delay = Math.min(delay * 2, maxBackoffMs)) {
      try {
        return await send();
      } catch (error) {
        if (!unreachable(error)) throw error;
        if (Date.now() + delay > giveUpAt) throw gaveUp(what, retryMs, error);
        this.#log(`sending ${what} failed (${(error as Error).message}); retrying in ${delay} ms`);
        await sleep(delay);
      }
    }
  }
}

/** Nothing is released on giving up: the lease runs out on the server and the task runs again. */
function gaveUp(what: string, retryMs: number, cause: unknown): AthanorError {
  return new AthanorError(
    'server_unreachable',
    `gave up sending ${what} after ${retryMs} ms (--upload-retry): the server stayed unreachable ` +
      `(${(cause as Error).message}); its lease will run out and the task will be claimed again`,
    { cause },
  );
}
