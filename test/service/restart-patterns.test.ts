import { describe, expect, it } from 'vitest';
import {
  checkRestartPatterns,
  matchRestartPatterns,
  maxPatternLength,
} from '../../src/service/restart-patterns.js';

describe('restart patterns', () => {
  it('are searched anywhere in the failure text unless anchored', async () => {
    const text = 'step 3 failed: CUDA out of memory\nretry later';
    const matched = await matchRestartPatterns(
      ['out of memory', '^step \\d', 'memory$', '(?m)memory$', '^retry', 'cuda', '(?i)cuda'],
      text,
    );
    expect([...matched].sort()).toEqual(['(?i)cuda', '(?m)memory$', '^step \\d', 'out of memory'].sort());
  });

  it('refuses what RE2 cannot run in linear time, and over-long patterns, naming the pattern', async () => {
    await expect(checkRestartPatterns(['ok', '(a)\\1'])).rejects.toThrow(/'\(a\)\\1' is not a valid RE2/);
    await expect(checkRestartPatterns(['(?<=a)b'])).rejects.toThrow(/lookaround/);
    await expect(checkRestartPatterns(['x'.repeat(maxPatternLength + 1)])).rejects.toThrow(
      /1 to 1000 characters/,
    );
    await expect(checkRestartPatterns(['(a+)+$', 'x'.repeat(maxPatternLength)])).resolves.toBeUndefined();
  });

  it('count a match past the deadline as no match, and keep matching afterwards', async () => {
    const text = Array.from({ length: 64 * 1024 }, (_, i) => ((i * 7919) % 3 === 0 ? 'a' : 'b')).join('');
    expect(await matchRestartPatterns(['[ab]*a[ab]{20}c'], text, 1)).toEqual(new Set());
    expect(await matchRestartPatterns(['b+$', 'c'], 'abb')).toEqual(new Set(['b+$']));
  });
});
