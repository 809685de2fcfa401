import { describe, expect, it } from 'vitest';
import { parseSince } from '../../src/cli/commands/audit.js';

const now = Date.parse('2026-11-22T12:00:00Z');

describe('audit list --since', () => {
  it('takes the same durations as every other flag, 30s and 1d12h included', () => {
    expect(parseSince('30s', now)).toBe('2026-11-22T11:59:30.000Z');
    expect(parseSince('1d12h', now)).toBe('2026-11-21T00:00:00.000Z');
    expect(parseSince('2w', now)).toBe('2026-11-08T12:00:00.000Z');
  });

  it('takes an ISO instant, and refuses what is neither with a usage error naming the flag', () => {
    expect(parseSince('2026-11-01T00:00:00Z', now)).toBe('2026-11-01T00:00:00.000Z');
    expect(() => parseSince('12x', now)).toThrow(/--since/);
    expect(() => parseSince('soon', now)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
  });
});
