import { AthanorError } from './errors.js';

const partPattern = /^[A-Za-z][A-Za-z0-9_]*$/;
const partNames = ['org', 'campaign', 'project'] as const;

/** The longest scope text accepted anywhere (API, CLI, stored rows). */
export const maxScopeLength = 200;

/** An `org-campaign-project` scope. Parts are names or `*`; after a `*` every part is `*`. */
export interface Scope {
  readonly org: string;
  readonly campaign: string;
  readonly project: string;
}

/**
 * Parses and validates a scope. The error names the offending part, e.g.
 * `'*-camp-*': a wildcard part must be followed only by wildcards`.
 */
export function parseScope(text: string): Scope {
  const fail = (why: string): never => {
    throw new AthanorError('invalid_scope', `'${text}': ${why}`, { details: { scope: text } });
  };
  if (text.length > maxScopeLength) {
    throw new AthanorError(
      'invalid_scope',
      `'${text.slice(0, 40)}…': a scope is at most ${maxScopeLength} characters, but this has ${text.length}`,
      { details: { length: text.length } },
    );
  }
  const parts = text.split('-');
  if (parts.length !== 3) {
    fail(`a scope has three parts, org-campaign-project, but this has ${parts.length}`);
  }
  let wildcardSeen = false;
  parts.forEach((part, index) => {
    const name = partNames[index];
    if (part === '*') {
      wildcardSeen = true;
      return;
    }
    if (wildcardSeen) fail('a wildcard part must be followed only by wildcards');
    if (part === '') fail(`the ${name} part is empty`);
    if (!partPattern.test(part)) {
      fail(
        `the ${name} part '${part}' must start with a letter and hold only letters, digits and underscores`,
      );
    }
  });
  const [org, campaign, project] = parts as [string, string, string];
  return Object.freeze({ org, campaign, project });
}

export function formatScope(scope: Scope): string {
  return `${scope.org}-${scope.campaign}-${scope.project}`;
}

/** True when the scope has no wildcard part: stored objects always have such a scope. */
export function isSpecificScope(scope: Scope): boolean {
  return scope.org !== '*' && scope.campaign !== '*' && scope.project !== '*';
}

/** Parses a scope that must be specific (no `*`), as every stored object's scope is. */
export function parseSpecificScope(text: string): Scope {
  const scope = parseScope(text);
  if (!isSpecificScope(scope)) {
    throw new AthanorError(
      'invalid_scope',
      `'${text}': objects are stored in a specific scope, without '*'`,
      {
        details: { scope: text },
      },
    );
  }
  return scope;
}

/** A covers B when every non-`*` part of A equals the same part of B. */
export function scopeCovers(a: Scope, b: Scope): boolean {
  return partNames.every((name) => a[name] === '*' || a[name] === b[name]);
}

/**
 * The scope both A and B cover, or `undefined` when they are disjoint. Used to intersect a
 * query's scope with each of the caller's scopes.
 */
export function intersectScopes(a: Scope, b: Scope): Scope | undefined {
  const parts: string[] = [];
  for (const name of partNames) {
    const x = a[name];
    const y = b[name];
    if (x === '*') parts.push(y);
    else if (y === '*' || x === y) parts.push(x);
    else return undefined;
  }
  const [org, campaign, project] = parts as [string, string, string];
  return Object.freeze({ org, campaign, project });
}
