import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/domain/canonical-json.js';
import { networkKey, networkKeyText } from '../../src/domain/keys.js';
import { parseScope } from '../../src/domain/scope.js';

/** The released definition: every stored network's key was made this way, so it must not change. */
function releasedNetworkKey(scope: string, name: string, keys: readonly string[]): string {
  const text = canonicalJson({ scope, name, transformations: [...new Set(keys)].sort() });
  return `net-${createHash('sha256').update(text).digest('hex')}`;
}

describe('network keys', () => {
  const scope = parseScope('lab-camp-proj');

  it('hashed in pieces, equal the key of the whole canonical text, whatever the keys and name', () => {
    const key = fc.stringMatching(/^tf-[0-9a-f]{8}$/);
    fc.assert(
      fc.property(
        fc.string(),
        fc.array(key, { maxLength: 40 }),
        fc.integer({ min: 1, max: 7 }),
        (name, keys, n) => {
          const whole = releasedNetworkKey('lab-camp-proj', name, keys);
          expect(networkKey(scope, name, keys)).toBe(whole);
          const pieces = [...networkKeyText(scope, name, [...new Set(keys)].sort(), n)];
          expect(`net-${createHash('sha256').update(pieces.join('')).digest('hex')}`).toBe(whole);
        },
      ),
    );
  });

  it('ignore the order and repeats of the transformations', () => {
    expect(networkKey(scope, 'n', ['tf-b', 'tf-a', 'tf-b'])).toBe(networkKey(scope, 'n', ['tf-a', 'tf-b']));
    expect(networkKey(scope, 'n', ['tf-a'])).not.toBe(networkKey(scope, 'm', ['tf-a']));
  });
});
