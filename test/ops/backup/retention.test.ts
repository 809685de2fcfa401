import { describe, expect, it } from 'vitest';
import { newBackupId } from '../../../src/ops/backup/backup-id.js';
import type { RetentionCandidate, RetentionPolicy } from '../../../src/ops/backup/retention.js';
import { applyRetention } from '../../../src/ops/backup/retention.js';

const hour = 3_600_000;
const day = 24 * hour;

/** A deterministic pseudo-random sequence (LCG), so the history is the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** 400 days of backups: mostly every 6 hours, sometimes several in one hour, with gaps of days. */
function history(now: Date): RetentionCandidate[] {
  const next = random(42);
  const candidates: RetentionCandidate[] = [];
  for (let t = now.getTime() - 400 * day; t <= now.getTime();) {
    const at = new Date(t);
    candidates.push({ id: newBackupId(at), createdAt: at, verified: false });
    const r = next();
    if (r < 0.05) t += 3 * day + Math.floor(next() * 2 * day);
    else if (r < 0.15) t += Math.floor(next() * 20) * 60_000 + 60_000;
    else t += 6 * hour + Math.floor(next() * hour);
  }
  return candidates;
}

// The expected set is computed here from the rule's definition, with period keys built differently
// from the implementation: ISO weeks are named by their Monday.
const keys = {
  keepHourly: (d: Date) => d.toISOString().slice(0, 13),
  keepDaily: (d: Date) => d.toISOString().slice(0, 10),
  keepWeekly: (d: Date) => new Date(d.getTime() - ((d.getUTCDay() + 6) % 7) * day).toISOString().slice(0, 10),
  keepMonthly: (d: Date) => d.toISOString().slice(0, 7),
  keepYearly: (d: Date) => d.toISOString().slice(0, 4),
} as const;

function expectedKept(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): Set<string> {
  const newestFirst = [...candidates].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const kept = new Set<string>(newestFirst.slice(0, policy.keepLast ?? 0).map((c) => c.id));
  const oldest = newestFirst.at(-1);
  if (oldest && (policy.keepLast ?? 0) > newestFirst.length) kept.add(oldest.id);
  for (const [option, key] of Object.entries(keys) as [keyof typeof keys, (d: Date) => string][]) {
    const count = policy[option] ?? 0;
    if (count === 0) continue;
    // The newest backup of each period, for the newest `count` periods that have one.
    const newestOfPeriod = new Map<string, string>();
    for (const c of newestFirst)
      if (!newestOfPeriod.has(key(c.createdAt))) newestOfPeriod.set(key(c.createdAt), c.id);
    for (const id of [...newestOfPeriod.values()].slice(0, count)) kept.add(id);
    // With count left over after the last period, the very oldest backup is kept too (restic ≥ 0.15).
    if (oldest && newestOfPeriod.size < count) kept.add(oldest.id);
  }
  const verified = newestFirst.find((c) => c.verified);
  if (verified) kept.add(verified.id);
  for (const c of candidates) if (c.createdAt > now) kept.add(c.id);
  return kept;
}

describe('backup retention', () => {
  const now = new Date('2026-11-22T01:30:00Z');

  it('keeps exactly the expected backups of a 400-day history', () => {
    const candidates = history(now);
    expect(candidates.length).toBeGreaterThan(800);
    const policy: RetentionPolicy = {
      keepLast: 5,
      keepHourly: 12,
      keepDaily: 10,
      keepWeekly: 8,
      keepMonthly: 12,
      keepYearly: 3,
    };
    const decision = applyRetention(candidates, policy, now);
    const expected = expectedKept(candidates, policy, now);
    expect(new Set(decision.keep.map((k) => k.id))).toEqual(expected);
    expect(decision.keep.length + decision.remove.length).toBe(candidates.length);
    expect(new Set([...decision.keep.map((k) => k.id), ...decision.remove]).size).toBe(candidates.length);
    // The yearly rule reaches back to the oldest backup: only two years have backups.
    expect(decision.keep.map((k) => k.id)).toContain(candidates[0]?.id);
  });

  for (const policy of [
    { keepDaily: 7 },
    { keepWeekly: 4, keepMonthly: 6 },
    { keepLast: 3, keepYearly: 1 },
    { keepHourly: 48 },
    { keepMonthly: 24 },
  ] satisfies RetentionPolicy[]) {
    it(`keeps exactly the expected backups for ${JSON.stringify(policy)}`, () => {
      const candidates = history(now);
      const decision = applyRetention(candidates, policy, now);
      expect(new Set(decision.keep.map((k) => k.id))).toEqual(expectedKept(candidates, policy, now));
    });
  }

  it('never removes the newest verified backup, nor one dated after now', () => {
    const candidates = history(now).map((c, i) => ({ ...c, verified: i === 100 || i === 50 }));
    const future = new Date(now.getTime() + 2 * hour);
    candidates.push({ id: newBackupId(future), createdAt: future, verified: false });
    const decision = applyRetention(candidates, { keepLast: 1 }, now);
    const kept = new Map(decision.keep.map((k) => [k.id, k.reasons]));
    expect(kept.get(candidates[100]?.id ?? '')).toEqual(['newest verified']);
    expect(kept.has(candidates[50]?.id ?? '')).toBe(false);
    expect(kept.get(candidates.at(-1)?.id ?? '')).toEqual(['last', 'dated in the future']);
    expect(kept.size).toBe(2);
  });

  it('explains each kept backup with the rules that keep it', () => {
    const at = (iso: string) => ({ id: iso, createdAt: new Date(iso), verified: false });
    const candidates = [
      at('2026-11-20T10:00:00Z'),
      at('2026-11-21T09:00:00Z'),
      at('2026-11-21T23:00:00Z'),
      at('2026-11-22T01:00:00Z'),
    ];
    const decision = applyRetention(candidates, { keepLast: 1, keepDaily: 2 }, now);
    expect(decision.keep).toEqual([
      { id: '2026-11-22T01:00:00Z', reasons: ['last', 'daily'] },
      { id: '2026-11-21T23:00:00Z', reasons: ['daily'] },
    ]);
    expect(decision.remove).toEqual(['2026-11-21T09:00:00Z', '2026-11-20T10:00:00Z']);
  });

  it('refuses to prune without a policy', () => {
    expect(() => applyRetention(history(now), {}, now)).toThrow(/no retention policy/);
    expect(() => applyRetention(history(now), { keepDaily: -1 }, now)).toThrow(/whole number/);
  });
});
