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
import type { Executor } from './protocols.js';
import { failureText } from './protocols.js';

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

/** A finished task's result waiting for the next exchange; its task stays in flight until then. */
interface PendingResult {
  readonly claim: Claim;
  readonly outcome: 'ok' | 'failed';
  readonly body: Buffer;
  readonly settle: (error?: unknown) => void;
}

/** Retries back off up to this: a server or database back from an outage sees work within seconds. */
const maxBackoffMs = 4_000;

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

/**
 * A compute service: registers, heartbeats, claims, executes, reports. When the server is
 * unreachable it backs off and retries, so a server restart loses no task. `stop()` stops
 * claiming, lets tasks in flight finish (or releases them after the grace period) and deregisters.
 */
export class ComputeService {
  readonly client: ComputeClient;
  #serviceId: string | undefined;
  readonly #inFlight = new Map<string, { claim: Claim; abort: AbortController; done: Promise<void> }>();
  readonly #stopping = new AbortController();
  /** Aborted once nothing is in flight any more after a stop: ends the heartbeat loop. */
  readonly #drained = new AbortController();
  #finished: Promise<void> | undefined;
  #pending: PendingResult[] = [];
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
        const { leases } = await this.#oneAtATime(() =>
          this.client.heartbeat(
            serviceId,
            [...this.#inFlight.values()].map(({ claim }) => ({
              task: claim.task,
              leaseToken: claim.leaseToken,
            })),
          ),
        );
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

  async #run(): Promise<void> {
    await this.#register();
    const heartbeats = this.#heartbeatLoop();
    const concurrency = this.options.concurrency ?? 1;
    const protocols = [...this.options.protocols.keys()];
    let backoff = 500;
    let fatal: { error: unknown } | undefined;
    while (!this.#stopping.signal.aborted) {
      // A task whose result waits to be reported frees its slot: the same request reports it.
      const free = concurrency - this.#inFlight.size + this.#pending.length;
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
            // A heartbeat waits for the claim: a long wait must not outlast the leases in flight.
            waitMs: Math.min(this.options.claimWaitMs ?? 5000, this.#heartbeatEveryMs),
            ...(this.options.scopes?.length ? { scopes: [...this.options.scopes] } : {}),
          };
          const serviceId = this.#serviceId as string;
          const claims = results.length
            ? await this.#exchange(serviceId, results, claim)
            : await this.client.claim(serviceId, claim);
          for (const claimed of claims) this.#execute(claimed);
        });
        backoff = 500;
      } catch (error) {
        // Unreported results go out with the next request, or one by one when batches are refused.
        if (isAthanorError(error) && error.code === 'maintenance') this.#uploadEach(results);
        else this.#pending.unshift(...results);
        if (isAthanorError(error) && error.code === 'stale_lease') {
          await this.#register();
        } else if (unreachable(error)) {
          this.#log(`claim failed (${(error as Error).message}); retrying in ${backoff} ms`);
          await sleep(backoff, this.#stopping.signal);
          backoff = Math.min(backoff * 2, maxBackoffMs);
        } else {
          // A refusal that retrying cannot fix: stop as on SIGTERM, then report it.
          fatal = { error };
          this.#stopping.abort();
        }
      }
    }
    this.#uploadEach(this.#pending.splice(0));
    await this.#drain();
    this.#drained.abort();
    await heartbeats;
    if (this.#serviceId) {
      await this.client
        .deregister(this.#serviceId)
        .catch((error: unknown) => this.#log(`deregister failed: ${(error as Error).message}`));
      this.#log(`deregistered ${this.#serviceId}`);
    }
    if (fatal) throw fatal.error;
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
    const abort = new AbortController();
    const done = this.#runTask(claim, abort.signal).finally(() => this.#inFlight.delete(claim.task));
    this.#inFlight.set(claim.task, { claim, abort, done });
  }

  async #runTask(claim: Claim, signal: AbortSignal): Promise<void> {
    const executor = this.options.protocols.get(claim.transformation.protocol);
    let outcome: 'ok' | 'failed';
    let body: Readable | Buffer;
    try {
      if (!executor)
        throw new Error(`this compute service has no '${claim.transformation.protocol}' protocol`);
      const extended = claim.extends?.result ?? null;
      const value = await executor(claim.transformation.inputs, {
        task: claim.task,
        transformation: claim.transformation,
        previousResult: extended ? () => this.client.downloadResult(extended) : undefined,
        signal,
      });
      outcome = 'ok';
      body = toBody(value);
    } catch (error) {
      outcome = 'failed';
      body = Buffer.from(failureText(error));
    }
    if (signal.aborted) return;
    await this.#report(claim, outcome, body);
  }

  /**
   * Reports a result, retrying while the server is unreachable; a stale lease drops it. A streamed
   * result is spooled to a temporary file first, so a retry can send it again without holding it
   * in memory.
   */
  async #report(claim: Claim, outcome: 'ok' | 'failed', body: Readable | Buffer): Promise<void> {
    if (Buffer.isBuffer(body) && body.length <= batchedResultBytes && !this.#stopping.signal.aborted) {
      return new Promise((resolve, reject) => {
        const settle = (error?: unknown) => (error === undefined ? resolve() : reject(error));
        this.#pending.push({ claim, outcome, body, settle });
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
      } else if (reported?.error?.code === 'stale_lease' || reported?.error?.code === 'not_found') {
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
    for (let delay = 500; ; delay = Math.min(delay * 2, maxBackoffMs)) {
      try {
        await this.client.submitResult(claim.task, claim.leaseToken, outcome, body());
        if (outcome === 'ok') this.completed++;
        else this.failed++;
        return;
      } catch (error) {
        if (isAthanorError(error) && (error.code === 'stale_lease' || error.code === 'not_found')) {
          this.#log(`result of ${claim.task} refused: ${error.message}`);
          return;
        }
        if (!unreachable(error))
          throw new AthanorError('internal', `reporting ${claim.task} failed: ${(error as Error).message}`);
        await sleep(delay);
      }
    }
  }
}
