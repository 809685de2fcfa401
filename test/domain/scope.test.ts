import { describe, expect, it } from 'vitest';
import { AthanorError } from '../../src/domain/errors.js';
import {
  formatScope,
  intersectScopes,
  isSpecificScope,
  parseScope,
  parseSpecificScope,
  scopeCovers,
} from '../../src/domain/scope.js';

describe('parseScope', () => {
  it.each([
    'org-campaign-project',
    'a-b-c',
    'Org1-camp_2-P_3',
    'org-campaign-*',
    'org-*-*',
    '*-*-*',
    'x_-y9-Z',
  ])('accepts %s', (text) => {
    expect(formatScope(parseScope(text))).toBe(text);
  });

  it.each([
    ['*-camp-*', 'a wildcard part must be followed only by wildcards'],
    ['org-*-proj', 'a wildcard part must be followed only by wildcards'],
    ['*-*-proj', 'a wildcard part must be followed only by wildcards'],
    ['org-campaign', 'three parts'],
    ['org-campaign-project-extra', 'three parts'],
    ['', 'three parts'],
    ['org--project', 'the campaign part is empty'],
    ['1org-campaign-project', "the org part '1org' must start with a letter"],
    ['org-camp aign-project', "the campaign part 'camp aign'"],
    ['org-campaign-pro.ject', "the project part 'pro.ject'"],
    ['org-campaign-_p', "the project part '_p'"],
    ['org-c*-p', "the campaign part 'c*'"],
  ])('refuses %j naming the problem', (text, why) => {
    let caught: unknown;
    try {
      parseScope(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AthanorError);
    const error = caught as AthanorError;
    expect(error.code).toBe('invalid_scope');
    expect(error.exitCode).toBe(2);
    expect(error.status).toBe(400);
    expect(error.message).toContain(`'${text}'`);
    expect(error.message).toContain(why);
  });

  it('gives the exact message the operator manual shows', () => {
    expect(() => parseScope('*-camp-*')).toThrow(
      "'*-camp-*': a wildcard part must be followed only by wildcards",
    );
  });
});

describe('specific scopes', () => {
  it('tells specific from wildcard scopes', () => {
    expect(isSpecificScope(parseScope('a-b-c'))).toBe(true);
    expect(isSpecificScope(parseScope('a-b-*'))).toBe(false);
    expect(() => parseSpecificScope('a-*-*')).toThrow(/specific scope/);
    expect(formatScope(parseSpecificScope('a-b-c'))).toBe('a-b-c');
  });
});

describe('scopeCovers', () => {
  const cases: [string, string, boolean][] = [
    ['org-camp-proj', 'org-camp-proj', true],
    ['org-camp-*', 'org-camp-proj', true],
    ['org-*-*', 'org-camp-proj', true],
    ['*-*-*', 'org-camp-proj', true],
    ['org-camp-other', 'org-camp-proj', false],
    ['org-other-*', 'org-camp-proj', false],
    ['other-*-*', 'org-camp-proj', false],
    ['org-camp-proj', 'org-camp-*', false],
    ['org-*-*', 'org-camp-*', true],
    ['org-camp-*', 'org-*-*', false],
    ['orga-*-*', 'orgb-x-y', false],
  ];
  it.each(cases)('%s covers %s: %s', (a, b, expected) => {
    expect(scopeCovers(parseScope(a), parseScope(b))).toBe(expected);
  });
});

describe('intersectScopes', () => {
  const cases: [string, string, string | undefined][] = [
    ['org-*-*', '*-*-*', 'org-*-*'],
    ['org-*-*', 'org-camp-*', 'org-camp-*'],
    ['org-camp-*', 'org-*-*', 'org-camp-*'],
    ['orga-*-*', 'orgb-*-*', undefined],
    ['org-a-*', 'org-b-p', undefined],
    ['org-a-p', 'org-a-p', 'org-a-p'],
  ];
  it.each(cases)('%s ∩ %s = %s', (a, b, expected) => {
    const result = intersectScopes(parseScope(a), parseScope(b));
    expect(result === undefined ? undefined : formatScope(result)).toBe(expected);
  });

  it('is what both scopes cover, and nothing more', () => {
    const scopes = ['*-*-*', 'a-*-*', 'b-*-*', 'a-x-*', 'a-y-*', 'a-x-p', 'a-x-q', 'b-x-p'].map(parseScope);
    const specifics = ['a-x-p', 'a-x-q', 'a-y-p', 'b-x-p', 'c-z-z'].map(parseScope);
    for (const a of scopes) {
      for (const b of scopes) {
        const both = intersectScopes(a, b);
        for (const s of specifics) {
          const inBoth = scopeCovers(a, s) && scopeCovers(b, s);
          expect(both ? scopeCovers(both, s) : false).toBe(inBoth);
        }
      }
    }
  });
});

describe('scope length', () => {
  it('accepts 200 characters and refuses 201, as the API does', () => {
    const at = (n: number) => `org-campaign-${'p'.repeat(n - 'org-campaign-'.length)}`;
    expect(formatScope(parseScope(at(200)))).toBe(at(200));
    expect(() => parseScope(at(201))).toThrow(/at most 200 characters, but this has 201/);
    expect(() => parseScope(at(10_000))).toThrowError(AthanorError);
  });
});
