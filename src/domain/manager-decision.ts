/**
 * How a compute manager decides, cycle by cycle, how many services to start or stop. Pure: the
 * manager process gathers the facts (the server's instruction and demand, its driver's launches)
 * and acts on the answer; the reason is what `compute manager status` shows.
 */

export const managerDecisionActions = ['start', 'stop', 'hold', 'backoff', 'drain'] as const;
export type ManagerDecisionAction = (typeof managerDecisionActions)[number];

/** One service the driver runs, joined with what the server knows of it. */
export interface LaunchFacts {
  readonly launch: string;
  /** `pending`: queued by the scheduler (a Slurm job waiting for a node), not running yet. */
  readonly state: 'pending' | 'running';
  readonly startedAtMs: number;
  /** Registered with the server (an active compute service under this launch). */
  readonly registered: boolean;
  /** Tasks it holds now (0 when not registered). */
  readonly leases: number;
  /** Started to keep `minServices` running: no `--max-idle`. */
  readonly standing: boolean;
  readonly draining: boolean;
}

export interface DecisionInput {
  readonly nowMs: number;
  readonly instruction: 'ok' | 'skip' | 'shutdown';
  readonly instructionReason: string;
  /** Claimable waiting tasks in the manager's scopes. */
  readonly waiting: number;
  readonly minServices: number;
  /** Its maximum after the operator's cap. */
  readonly maxServices: number;
  /** Tasks one service runs at once. */
  readonly concurrency: number;
  /** Services started per cycle at most, so a burst of demand does not flood the scheduler. */
  readonly maxStartsPerCycle: number;
  /** A launch running this long without registering is cancelled. */
  readonly registerTimeoutMs: number;
  /** Services started beyond the minimum end after this long without work. */
  readonly idleTimeoutMs: number;
  /** Until when starting is suspended after failed starts; 0: not. */
  readonly backoffUntilMs: number;
  readonly backoffReason?: string | undefined;
  readonly launches: readonly LaunchFacts[];
}

export interface Decision {
  readonly action: ManagerDecisionAction;
  /** Services to start now. */
  readonly start: number;
  /** How many of the started ones are standing (for `minServices`). */
  readonly standing: number;
  /** Launches to stop through the driver now. */
  readonly stop: readonly string[];
  /** Launches whose services should finish their leases and exit. */
  readonly drain: readonly string[];
  readonly reason: string;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function decide(input: DecisionInput): Decision {
  const { launches, nowMs } = input;
  if (input.instruction === 'shutdown') {
    return {
      action: 'stop',
      start: 0,
      standing: 0,
      stop: [],
      drain: launches.filter((l) => !l.draining).map((l) => l.launch),
      reason: `${input.instructionReason}: draining ${plural(launches.length, 'service')} and exiting`,
    };
  }
  // A launch that runs but never registered is broken (bad key, wrong URL, crashed at start).
  const unregistered = launches.filter(
    (l) => l.state === 'running' && !l.registered && nowMs - l.startedAtMs > input.registerTimeoutMs,
  );
  // Queued jobs no demand needs any more are cancelled rather than left to start and idle out.
  const pendingUnneeded =
    input.waiting === 0
      ? launches.filter((l) => l.state === 'pending' && !l.standing).map((l) => l.launch)
      : [];
  // Scale-down that does not depend on the service: one that stayed idle well past its own
  // --max-idle (it should have exited by itself) is stopped by the driver.
  const overdue = launches.filter(
    (l) =>
      !l.standing &&
      l.registered &&
      l.leases === 0 &&
      input.waiting === 0 &&
      nowMs - l.startedAtMs > input.idleTimeoutMs * 2 + input.registerTimeoutMs,
  );
  const stop = [
    ...new Set([...unregistered.map((l) => l.launch), ...pendingUnneeded, ...overdue.map((l) => l.launch)]),
  ];
  const live = launches.filter((l) => !stop.includes(l.launch) && !l.draining);
  const reasons: string[] = [];
  if (unregistered.length)
    reasons.push(`cancelling ${plural(unregistered.length, 'service')} that never registered`);
  if (pendingUnneeded.length)
    reasons.push(`cancelling ${plural(pendingUnneeded.length, 'queued service')}: no claimable work`);
  if (overdue.length)
    reasons.push(`stopping ${plural(overdue.length, 'idle service')} past the idle timeout`);

  // Over the (possibly lowered) maximum: the newest idle ones drain first.
  const excess = live.length - input.maxServices;
  const drain: string[] = [];
  if (excess > 0) {
    const byPreference = [...live].sort((a, b) => a.leases - b.leases || b.startedAtMs - a.startedAtMs);
    drain.push(...byPreference.slice(0, excess).map((l) => l.launch));
    reasons.push(`draining ${plural(excess, 'service')}: above max-services ${input.maxServices}`);
  }
  const running = live.length - drain.length;

  const finish = (action: ManagerDecisionAction, start: number, standing: number, why: string): Decision => ({
    action: start > 0 ? 'start' : stop.length ? 'stop' : drain.length ? 'drain' : action,
    start,
    standing,
    stop,
    drain,
    reason: [...reasons, why].join('; '),
  });

  if (input.instruction === 'skip') return finish('hold', 0, 0, input.instructionReason);
  const standingRunning = live.filter((l) => l.standing).length;
  const standingNeeded = Math.max(0, Math.min(input.minServices, input.maxServices) - standingRunning);
  const room = Math.max(0, input.maxServices - running);
  // Services that will claim soon: registered and idle, or not registered yet.
  const ready = live.filter((l) => !l.registered || l.leases === 0).length;
  const uncovered = Math.max(0, input.waiting - ready * input.concurrency);
  const wanted = Math.max(standingNeeded, Math.ceil(uncovered / input.concurrency));
  if (wanted === 0) {
    if (input.waiting === 0)
      return finish('hold', 0, 0, `no claimable work in your scopes; ${plural(running, 'service')} running`);
    return finish(
      'hold',
      0,
      0,
      `${plural(input.waiting, 'waiting task')}, covered by ${plural(ready, 'idle or starting service')}`,
    );
  }
  if (room === 0)
    return finish(
      'hold',
      0,
      0,
      `${plural(input.waiting, 'waiting task')} but at max-services (${input.maxServices})`,
    );
  if (nowMs < input.backoffUntilMs) {
    return finish(
      'backoff',
      0,
      0,
      `backing off for ${Math.ceil((input.backoffUntilMs - nowMs) / 1000)} s after failed starts: ${input.backoffReason ?? 'unknown error'}`,
    );
  }
  const start = Math.min(wanted, room, input.maxStartsPerCycle);
  const standing = Math.min(standingNeeded, start);
  const limitedBy =
    start < wanted
      ? start === room
        ? ` (max-services ${input.maxServices})`
        : ` (at most ${input.maxStartsPerCycle} per cycle)`
      : '';
  return finish(
    'start',
    start,
    standing,
    `starting ${plural(start, 'service')}${limitedBy}: ${plural(input.waiting, 'waiting task')}, ${plural(running, 'service')} running` +
      (standing ? `, ${standing} to keep min-services ${input.minServices}` : ''),
  );
}

/** The next backoff after `failures` failed starts in a row: 5 s doubling to 5 minutes. */
export function startBackoffMs(failures: number): number {
  return Math.min(5_000 * 2 ** Math.max(0, failures - 1), 300_000);
}
