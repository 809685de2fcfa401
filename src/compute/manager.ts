import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { ComputeClient } from '../client/compute-client.js';
import type { ClientOptions } from '../client/http-client.js';
import type { ManagerDecision, ManagerInstruction, ManagerLaunch } from '../domain/api-views.js';
import { isAthanorError } from '../domain/errors.js';
import type { Decision, LaunchFacts } from '../domain/manager-decision.js';
import { decide, startBackoffMs } from '../domain/manager-decision.js';
import type { ComputeDriver, DriverLaunch, LaunchRequest } from './drivers/driver.js';

export interface ComputeManagerOptions extends ClientOptions {
  readonly name: string;
  readonly driver: ComputeDriver;
  readonly scopes?: readonly string[] | undefined;
  /** Default 0. */
  readonly minServices?: number | undefined;
  readonly maxServices: number;
  /** Services beyond the minimum exit after this long without work (`--max-idle`); default 10 min. */
  readonly idleTimeoutMs?: number | undefined;
  /** Between cycles; default 5000 ms. */
  readonly intervalMs?: number | undefined;
  /** A launch that runs this long without registering is cancelled; default 120000 ms. */
  readonly registerTimeoutMs?: number | undefined;
  /** Tasks each service runs at once; default 1. */
  readonly concurrency?: number | undefined;
  /** Services started per cycle at most; default 10. */
  readonly maxStartsPerCycle?: number | undefined;
  /** Further `compute run` arguments for every service (`--allow-exec`, `--protocols f.js`). */
  readonly serviceArgs?: readonly string[] | undefined;
  readonly log?: ((message: string) => void) | undefined;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

const sameKind = (a: string, b: string) => a.replace(/\d+/g, '#') === b.replace(/\d+/g, '#');

/**
 * A compute manager: each cycle it lists what its driver runs, reports it with its heartbeat,
 * receives the instruction and the demand in its scopes, decides (`domain/manager-decision.ts`)
 * and acts through the driver. Services it starts end by themselves (`--max-idle`); it stops what
 * never registered and backs off when starts fail.
 */
export class ComputeManager {
  readonly client: ComputeClient;
  #managerId: string | undefined;
  readonly #stopping = new AbortController();
  /** Decisions not yet reported; each is audited by the server. */
  #unreported: ManagerDecision[] = [];
  #lastReported: ManagerDecision | undefined;
  #drain: string[] = [];
  #failures = 0;
  #backoffUntilMs = 0;
  #backoffReason: string | undefined;
  /** Launches this process started and has not seen registered yet: a vanished one failed. */
  readonly #unproven = new Map<string, number>();
  /** Calls made to the driver, for the operator (and the busy-loop test). */
  driverCalls = 0;
  cycles = 0;
  #finished: Promise<void> | undefined;

  constructor(private readonly options: ComputeManagerOptions) {
    this.client = new ComputeClient(options);
  }

  get managerId(): string | undefined {
    return this.#managerId;
  }

  #log(message: string): void {
    this.options.log?.(message);
  }

  start(): Promise<void> {
    this.#finished ??= this.#run();
    return this.#finished;
  }

  /** Stops cycling and deregisters; the services keep running and end by themselves. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#finished;
  }

  async #register(): Promise<void> {
    for (let delay = 500; !this.#stopping.signal.aborted; delay = Math.min(delay * 2, 5_000)) {
      try {
        const answer = await this.client.registerManager({
          name: this.options.name,
          hostname: os.hostname(),
          driver: this.options.driver.name,
          scopes: this.options.scopes,
          minServices: this.options.minServices ?? 0,
          maxServices: this.options.maxServices,
        });
        this.#managerId = answer.id;
        this.#log(
          `${answer.resumed ? 'resumed' : 'registered'} as ${answer.id} (driver ${this.options.driver.name})`,
        );
        return;
      } catch (error) {
        if (!retryable(error)) throw error;
        this.#log(`server unreachable (${(error as Error).message}); retrying in ${delay} ms`);
        await sleep(delay, this.#stopping.signal);
      }
    }
  }

  #record(action: ManagerDecision['action'], count: number, reason: string): void {
    const last = this.#lastReported;
    // A hold that says what the last decision said is not news: it is neither logged nor audited.
    if (action === 'hold' && last?.action === 'hold' && sameKind(last.reason, reason)) return;
    const decision = { at: new Date().toISOString(), action, count, reason };
    this.#lastReported = decision;
    this.#unreported.push(decision);
    this.#log(`${action}${count ? ` ${count}` : ''}: ${reason}`);
  }

  async #listLaunches(): Promise<DriverLaunch[] | undefined> {
    this.driverCalls++;
    try {
      return await this.options.driver.list();
    } catch (error) {
      this.#failed(`driver refused to list: ${(error as Error).message}`);
      return undefined;
    }
  }

  #failed(reason: string): void {
    this.#failures++;
    this.#backoffUntilMs = Date.now() + startBackoffMs(this.#failures);
    this.#backoffReason = reason;
    this.#record(
      'backoff',
      0,
      `${reason} (${this.#failures} in a row; next try in ${startBackoffMs(this.#failures) / 1000} s)`,
    );
  }

  async #run(): Promise<void> {
    await this.#register();
    const interval = this.options.intervalMs ?? 5_000;
    while (!this.#stopping.signal.aborted) {
      this.cycles++;
      const shutdown = await this.#cycle().catch((error: unknown) => {
        if (!retryable(error)) throw error;
        this.#log(`cycle failed (${(error as Error).message}); next in ${interval} ms`);
        return false;
      });
      if (shutdown) break;
      const wait = Math.max(
        interval,
        this.#backoffUntilMs > Date.now() ? Math.min(this.#backoffUntilMs - Date.now(), interval * 4) : 0,
      );
      await sleep(wait, this.#stopping.signal);
    }
    if (this.#managerId) {
      await this.client
        .deregisterManager(this.#managerId)
        .catch((error: unknown) => this.#log(`deregister failed: ${(error as Error).message}`));
      this.#log(`deregistered ${this.#managerId}; its services end by themselves`);
    }
  }

  /** One cycle; true when the server says to shut down and every service is gone. */
  async #cycle(): Promise<boolean> {
    const inBackoff = Date.now() < this.#backoffUntilMs;
    const listed =
      inBackoff && this.#failures > 0 && this.#backoffReason?.startsWith('driver refused to list')
        ? undefined
        : await this.#listLaunches();
    const launches = listed ?? [];
    const reported: ManagerLaunch[] = launches.map((l) => ({
      launch: l.launch,
      state: l.state,
      startedAt: new Date(l.startedAtMs).toISOString(),
      handle: l.handle,
    }));
    const answer = await this.#heartbeat(reported);
    if (answer.instruction === 'shutdown' && launches.length === 0) {
      this.#record('stop', 0, `${answer.reason}: no services left, exiting`);
      await this.#heartbeat(reported).catch(() => undefined);
      return true;
    }
    if (!listed) return false;
    const registered = new Map(answer.services.filter((s) => s.launch).map((s) => [s.launch!, s]));
    const now = Date.now();
    // A launch this process started that is gone without ever registering failed at once.
    const live = new Set(launches.map((l) => l.launch));
    for (const [launch, startedAt] of this.#unproven) {
      if (registered.has(launch)) {
        this.#unproven.delete(launch);
        this.#failures = 0;
      } else if (!live.has(launch)) {
        this.#unproven.delete(launch);
        if (now - startedAt < (this.options.registerTimeoutMs ?? 120_000) * 2)
          this.#failed(`service ${launch} exited without registering (see its log)`);
      }
    }
    const facts: LaunchFacts[] = launches.map((l) => {
      const service = registered.get(l.launch);
      return {
        launch: l.launch,
        state: l.state,
        startedAtMs: l.startedAtMs,
        registered: Boolean(service),
        leases: service?.leases ?? 0,
        standing: l.standing,
        draining: service?.draining ?? false,
      };
    });
    const decision = decide({
      nowMs: now,
      instruction: answer.instruction,
      instructionReason: answer.reason,
      waiting: answer.demand.waiting,
      minServices: this.options.minServices ?? 0,
      maxServices: answer.maxServices,
      concurrency: this.options.concurrency ?? 1,
      maxStartsPerCycle: this.options.maxStartsPerCycle ?? 10,
      registerTimeoutMs: this.options.registerTimeoutMs ?? 120_000,
      idleTimeoutMs: this.options.idleTimeoutMs ?? 600_000,
      backoffUntilMs: this.#backoffUntilMs,
      backoffReason: this.#backoffReason,
      launches: facts,
    });
    await this.#act(decision, launches);
    return false;
  }

  async #heartbeat(launches: ManagerLaunch[]): Promise<ManagerInstruction> {
    const decisions = this.#unreported.splice(0);
    const drain = this.#drain.splice(0);
    try {
      return await this.client.managerHeartbeat(this.#managerId!, { launches, decisions, drain });
    } catch (error) {
      this.#unreported.unshift(...decisions);
      this.#drain.unshift(...drain);
      if (isAthanorError(error) && error.code === 'not_found') await this.#register();
      throw error;
    }
  }

  async #act(decision: Decision, launches: readonly DriverLaunch[]): Promise<void> {
    const byLaunch = new Map(launches.map((l) => [l.launch, l]));
    for (const launch of decision.stop) {
      const found = byLaunch.get(launch);
      if (!found) continue;
      this.driverCalls++;
      await this.options.driver
        .stop(found)
        .catch((error: unknown) => this.#log(`stopping ${launch} failed: ${(error as Error).message}`));
    }
    this.#drain.push(...decision.drain);
    if (decision.start === 0) {
      this.#record(decision.action, decision.stop.length + decision.drain.length, decision.reason);
      return;
    }
    const requests: LaunchRequest[] = Array.from({ length: decision.start }, (_, i) =>
      this.#request(i < decision.standing),
    );
    this.driverCalls++;
    try {
      await this.options.driver.start(requests);
      for (const r of requests) this.#unproven.set(r.launch, Date.now());
      this.#record('start', requests.length, decision.reason);
    } catch (error) {
      this.#failed(`driver refused: ${(error as Error).message}`);
    }
  }

  #request(standing: boolean): LaunchRequest {
    const launch = randomBytes(6).toString('hex');
    const args = [
      'compute',
      'run',
      '--name',
      `${this.options.name}/${launch}`,
      '--manager',
      this.#managerId!,
      '--launch',
      launch,
      '--concurrency',
      String(this.options.concurrency ?? 1),
      ...(this.options.scopes ?? []).flatMap((s) => ['--scope', s]),
      ...(standing
        ? []
        : ['--max-idle', `${serviceMaxIdleMs(this.options.idleTimeoutMs ?? 600_000) / 1000}s`]),
      ...(this.options.serviceArgs ?? []),
    ];
    return { launch, standing, args };
  }
}

const retryable = (error: unknown) =>
  isAthanorError(error) &&
  (error.code === 'server_unreachable' ||
    error.code === 'maintenance' ||
    error.status >= 500 ||
    error.code === 'not_found');

/**
 * The `--max-idle` of a service the manager starts: a little under the idle timeout, since
 * deregistering and exiting take a second or two, so that one idle timeout after the queue drained
 * the service is gone, not just about to go.
 */
export function serviceMaxIdleMs(idleTimeoutMs: number): number {
  return Math.max(1000, Math.round(idleTimeoutMs - Math.min(2000, idleTimeoutMs / 2)));
}
