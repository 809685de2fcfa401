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

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

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
    for (let delay = 500; !this.#stopping.signal.aborted; delay = Math.min(delay * 2, 15_000)) {
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

  async #heartbeatLoop(): Promise<void> {
    while (!this.#drained.signal.aborted) {
      await sleep(this.#heartbeatEveryMs, this.#drained.signal);
      if (!this.#serviceId || this.#drained.signal.aborted) continue;
      try {
        const { leases } = await this.client.heartbeat(this.#serviceId);
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
    while (!this.#stopping.signal.aborted) {
      const free = concurrency - this.#inFlight.size;
      if (free <= 0) {
        await Promise.race([
          ...[...this.#inFlight.values()].map((r) => r.done),
          sleep(1000, this.#stopping.signal),
        ]);
        continue;
      }
      try {
        const claims = await this.client.claim(this.#serviceId as string, {
          count: free,
          protocols,
          waitMs: this.options.claimWaitMs ?? 5000,
          ...(this.options.scopes?.length ? { scopes: [...this.options.scopes] } : {}),
        });
        backoff = 500;
        for (const claim of claims) this.#execute(claim);
      } catch (error) {
        if (isAthanorError(error) && error.code === 'stale_lease') {
          await this.#register();
        } else if (unreachable(error)) {
          this.#log(`claim failed (${(error as Error).message}); retrying in ${backoff} ms`);
          await sleep(backoff, this.#stopping.signal);
          backoff = Math.min(backoff * 2, 15_000);
        } else {
          throw error;
        }
      }
    }
    await this.#drain();
    this.#drained.abort();
    await heartbeats;
    if (this.#serviceId) {
      await this.client
        .deregister(this.#serviceId)
        .catch((error: unknown) => this.#log(`deregister failed: ${(error as Error).message}`));
      this.#log(`deregistered ${this.#serviceId}`);
    }
  }

  /** Lets tasks in flight finish within the grace period, then releases the rest. */
  async #drain(): Promise<void> {
    if (this.#inFlight.size === 0) return;
    this.#log(`stopping: waiting for ${this.#inFlight.size} task(s) in flight`);
    const all = Promise.all([...this.#inFlight.values()].map((r) => r.done));
    await Promise.race([all, sleep(this.options.stopGraceMs ?? 30_000)]);
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

  async #upload(claim: Claim, outcome: 'ok' | 'failed', body: () => Readable | Buffer): Promise<void> {
    for (let delay = 500; ; delay = Math.min(delay * 2, 15_000)) {
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
