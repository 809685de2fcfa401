import { describe, expect, it } from 'vitest';
import type { DecisionInput, LaunchFacts } from '../../src/domain/manager-decision.js';
import { decide, startBackoffMs } from '../../src/domain/manager-decision.js';

const now = 1_000_000;
const base: DecisionInput = {
  nowMs: now,
  instruction: 'ok',
  instructionReason: 'serving demand',
  waiting: 0,
  minServices: 0,
  maxServices: 3,
  concurrency: 1,
  maxStartsPerCycle: 10,
  registerTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  backoffUntilMs: 0,
  launches: [],
};
const launch = (name: string, facts: Partial<LaunchFacts> = {}): LaunchFacts => ({
  launch: name,
  state: 'running',
  startedAtMs: now - 1000,
  registered: true,
  leases: 1,
  standing: false,
  draining: false,
  ...facts,
});

describe('the manager decision', () => {
  it('starts for uncovered work, never above max-services, and says why', () => {
    expect(decide({ ...base, waiting: 40 })).toMatchObject({
      action: 'start',
      start: 3,
      reason: 'starting 3 services (max-services 3): 40 waiting tasks, 0 services running',
    });
    expect(decide({ ...base, waiting: 40, launches: [launch('a'), launch('b'), launch('c')] })).toMatchObject(
      {
        action: 'hold',
        start: 0,
        reason: '40 waiting tasks but at max-services (3)',
      },
    );
    // Idle or starting services cover waiting tasks before new ones start.
    const starting = launch('a', { registered: false, leases: 0, startedAtMs: now - 5000 });
    expect(decide({ ...base, waiting: 1, launches: [starting] })).toMatchObject({ start: 0, action: 'hold' });
    expect(decide({ ...base, waiting: 9, concurrency: 4, maxServices: 10 })).toMatchObject({ start: 3 });
    expect(decide({ ...base, waiting: 100, maxServices: 50 }).start).toBe(10);
  });

  it('holds with no work, keeps min-services standing, and backs off after failures', () => {
    expect(decide(base)).toMatchObject({
      action: 'hold',
      reason: 'no claimable work in your scopes; 0 services running',
    });
    expect(decide({ ...base, minServices: 2 })).toMatchObject({ start: 2, standing: 2 });
    expect(
      decide({ ...base, waiting: 5, backoffUntilMs: now + 10_000, backoffReason: 'sbatch exit 1: no' }),
    ).toMatchObject({
      action: 'backoff',
      start: 0,
      reason: 'backing off for 10 s after failed starts: sbatch exit 1: no',
    });
    expect(decide({ ...base, waiting: 5, instruction: 'skip', instructionReason: 'paused' })).toMatchObject({
      start: 0,
      reason: 'paused',
    });
    expect([1, 2, 3, 10].map(startBackoffMs)).toEqual([5_000, 10_000, 20_000, 300_000]);
  });

  it('cancels what never registered or is no longer needed, and drains above a lowered cap', () => {
    const stuck = launch('stuck', { registered: false, leases: 0, startedAtMs: now - 120_000 });
    const queued = launch('queued', { state: 'pending', registered: false, leases: 0 });
    const d = decide({ ...base, launches: [stuck, queued] });
    expect(d.stop).toEqual(['stuck', 'queued']);
    expect(d.reason).toContain('cancelling 1 service that never registered');
    expect(d.reason).toContain('cancelling 1 queued service: no claimable work');
    const busy = [launch('a'), launch('b', { leases: 0, startedAtMs: now - 10 }), launch('c')];
    expect(decide({ ...base, waiting: 3, maxServices: 2, launches: busy })).toMatchObject({
      action: 'drain',
      drain: ['b'],
    });
    const overdue = launch('old', { leases: 0, startedAtMs: now - 500_000 });
    expect(decide({ ...base, launches: [overdue] }).stop).toEqual(['old']);
    expect(
      decide({ ...base, instruction: 'shutdown', instructionReason: 'stopped', launches: busy }),
    ).toMatchObject({
      action: 'stop',
      drain: ['a', 'b', 'c'],
    });
  });
});
