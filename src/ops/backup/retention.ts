import { AthanorError } from '../../domain/errors.js';

/** How many backups to keep per period, restic style; an omitted or zero count keeps none by that rule. */
export interface RetentionPolicy {
  readonly keepLast?: number;
  readonly keepHourly?: number;
  readonly keepDaily?: number;
  readonly keepWeekly?: number;
  readonly keepMonthly?: number;
  readonly keepYearly?: number;
}

export interface RetentionCandidate {
  readonly id: string;
  readonly createdAt: Date;
  /** A full verification of this backup succeeded. */
  readonly verified: boolean;
}

export interface RetentionDecision {
  /** Kept backups, newest first, each with the rules that keep it. */
  readonly keep: readonly { readonly id: string; readonly reasons: readonly string[] }[];
  /** Backups to delete, newest first. */
  readonly remove: readonly string[];
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO 8601 week-numbering year and week of a UTC instant. */
function isoWeek(date: Date): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${pad(week)}`;
}

const rules = [
  { option: 'keepLast', reason: 'last', bucket: (_d: Date, index: number) => `#${index}` },
  {
    option: 'keepHourly',
    reason: 'hourly',
    bucket: (d: Date) =>
      `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}`,
  },
  {
    option: 'keepDaily',
    reason: 'daily',
    bucket: (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
  },
  { option: 'keepWeekly', reason: 'weekly', bucket: (d: Date) => isoWeek(d) },
  {
    option: 'keepMonthly',
    reason: 'monthly',
    bucket: (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`,
  },
  { option: 'keepYearly', reason: 'yearly', bucket: (d: Date) => String(d.getUTCFullYear()) },
] as const satisfies readonly {
  option: keyof RetentionPolicy;
  reason: string;
  bucket: (d: Date, i: number) => string;
}[];

/** Throws `invalid_argument` for a policy with a bad count or no rule at all (it would keep nothing). */
export function assertRetentionPolicy(policy: RetentionPolicy): void {
  for (const rule of rules) {
    const count = policy[rule.option];
    if (count !== undefined && (!Number.isSafeInteger(count) || count < 0)) {
      throw new AthanorError(
        'invalid_argument',
        `--${rule.option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} takes a whole number`,
      );
    }
  }
  if (rules.every((rule) => !policy[rule.option])) {
    throw new AthanorError(
      'invalid_argument',
      'no retention policy given, so nothing would be kept: pass at least one of --keep-last, --keep-hourly, ' +
        '--keep-daily, --keep-weekly, --keep-monthly, --keep-yearly',
    );
  }
}

/**
 * Decides which backups a policy keeps, with restic's semantics (periods in UTC): going from newest
 * to oldest, each rule keeps the newest backup of each of its last n periods that have backups,
 * and the oldest backup while the rule still has count left. On top, it never removes the newest
 * verified backup, nor a backup dated after `now` (a clock ahead of ours). Pure: `now` is injected.
 */
export function applyRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision {
  assertRetentionPolicy(policy);
  const sorted = [...candidates].sort(
    (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id.localeCompare(a.id),
  );
  const remaining = rules.map((rule) => policy[rule.option] ?? 0);
  const last: (string | undefined)[] = rules.map(() => undefined);
  const newestVerified = sorted.find((c) => c.verified)?.id;
  const keep: { id: string; reasons: string[] }[] = [];
  const remove: string[] = [];
  for (const [index, candidate] of sorted.entries()) {
    const reasons: string[] = [];
    for (const [r, rule] of rules.entries()) {
      if ((remaining[r] ?? 0) <= 0) continue;
      const bucket = rule.bucket(candidate.createdAt, index);
      if (bucket !== last[r] || index === sorted.length - 1) {
        last[r] = bucket;
        remaining[r] = (remaining[r] ?? 0) - 1;
        reasons.push(rule.reason);
      }
    }
    if (candidate.id === newestVerified) reasons.push('newest verified');
    if (candidate.createdAt.getTime() > now.getTime()) reasons.push('dated in the future');
    if (reasons.length > 0) keep.push({ id: candidate.id, reasons });
    else remove.push(candidate.id);
  }
  return { keep, remove };
}
