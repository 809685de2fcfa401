import { AthanorError } from './errors.js';

const unitMs: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a duration such as `90m`, `26h`, `7d` or `1d12h` (units s, m, h, d, w) into milliseconds.
 * Throws `invalid_argument` naming `flag`.
 */
export function parseDuration(text: string, flag: string): number {
  const trimmed = text.trim().toLowerCase();
  let total = 0;
  let rest = trimmed;
  while (rest !== '') {
    const match = /^(\d+(?:\.\d+)?)([smhdw])/.exec(rest);
    if (!match) break;
    total += Number(match[1]) * (unitMs[match[2] ?? ''] ?? 0);
    rest = rest.slice(match[0].length);
  }
  if (trimmed === '' || rest !== '' || !Number.isFinite(total) || total <= 0) {
    throw new AthanorError(
      'invalid_argument',
      `${flag} takes a duration like 90m, 26h or 7d (units s, m, h, d, w), got '${text}'`,
    );
  }
  return Math.round(total);
}

/** A duration for people: `3h 12m`, `2d 4h`, `45s`. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  if (minutes > 0) return `${minutes}m`;
  return `${seconds}s`;
}
