import { describe, expect, it } from 'vitest';
import { parseIdentifier, parseIdentityKind, validateKey } from '../../src/domain/identifier.js';

describe('parseIdentifier', () => {
  it.each(['alice', 'a', 'hpc-cluster-1', 'alice.smith@example.org', 'A_b.c@d-e', 'x'.repeat(64)])(
    'accepts %s',
    (id) => expect(parseIdentifier(id)).toBe(id),
  );

  it.each([
    ['', 'is empty'],
    ['1alice', 'must start with a letter'],
    ['-alice', 'must start with a letter'],
    ['ali ce', "contains ' '"],
    ['alice/bob', "contains '/'"],
    ['x'.repeat(65), 'the limit is 64'],
  ])('refuses %j: %s', (id, why) => {
    expect(() => parseIdentifier(id)).toThrow(why);
  });
});

describe('identity kinds and keys', () => {
  it('knows user and compute only', () => {
    expect(parseIdentityKind('user')).toBe('user');
    expect(parseIdentityKind('compute')).toBe('compute');
    expect(() => parseIdentityKind('admin')).toThrow(/'admin' is not an identity type/);
  });

  it('refuses short keys and keys with line breaks', () => {
    expect(() => validateKey('short')).toThrow(/at least 12/);
    expect(() => validateKey('long enough key\nsecond line')).toThrow(/line break/);
    expect(validateKey('a-long-enough-key')).toBe('a-long-enough-key');
  });
});
