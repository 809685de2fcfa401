import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/domain/canonical-json.js';

/** The definition, written recursively: what the iterative encoder must always agree with. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => reference(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
}

describe('canonical JSON', () => {
  it('sorts keys, drops whitespace and undefined members, and agrees with the recursive definition', () => {
    expect(canonicalJson({ b: [1, undefined, { d: 1, c: 'x' }], a: null, z: undefined })).toBe(
      '{"a":null,"b":[1,null,{"c":"x","d":1}]}',
    );
    fc.assert(fc.property(fc.jsonValue(), (value) => canonicalJson(value) === reference(value)));
  });

  it('encodes 100,000 levels of nesting, where a recursive encoder overflows the stack', () => {
    let nested: unknown = 'leaf';
    let expected = '"leaf"';
    for (let i = 0; i < 100_000; i++) {
      nested = i % 2 ? { k: nested } : [nested];
      expected = i % 2 ? `{"k":${expected}}` : `[${expected}]`;
    }
    expect(() => reference(nested)).toThrow(RangeError);
    expect(canonicalJson(nested)).toBe(expected);
  });
});
