import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';
import type { Scope } from '../domain/scope.js';
import { formatScope, intersectScopes, parseScope, scopeCovers } from '../domain/scope.js';

/** The authenticated caller of an API request. */
export interface Principal {
  readonly kind: IdentityKind;
  readonly identifier: string;
  readonly scopes: readonly Scope[];
}

/** What `whoami` answers: the identity and its scopes as text. */
export function principalView(principal: Principal) {
  return {
    kind: principal.kind,
    identifier: principal.identifier,
    scopes: principal.scopes.map(formatScope),
  };
}

export function principalName(principal: Principal): string {
  return `${principal.kind}:${principal.identifier}`;
}

/** True when one of the caller's scopes covers the object's (specific) scope. */
export function canAccess(principal: Principal, objectScope: string | Scope): boolean {
  const scope = typeof objectScope === 'string' ? parseScope(objectScope) : objectScope;
  return principal.scopes.some((held) => scopeCovers(held, scope));
}

/**
 * Refuses a write into a scope the caller does not hold. The scope came from the caller, so a
 * 403 reveals nothing they did not already say.
 */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!canAccess(principal, scope)) {
    throw new AthanorError(
      'forbidden',
      `${principalName(principal)} holds no scope covering '${formatScope(scope)}'; ` +
        `an operator can grant it with 'athanor identity add-scope'`,
    );
  }
}

/**
 * The scopes a query may see: the query scope (default `*-*-*`) intersected with each held
 * scope. An empty list means the query sees nothing.
 */
export function visibleScopes(principal: Principal, query: Scope | undefined): Scope[] {
  const wanted = query ?? parseScope('*-*-*');
  const result: Scope[] = [];
  for (const held of principal.scopes) {
    const both = intersectScopes(held, wanted);
    if (both && !result.some((s) => scopeCovers(s, both))) {
      for (let i = result.length - 1; i >= 0; i--)
        if (scopeCovers(both, result[i] as Scope)) result.splice(i, 1);
      result.push(both);
    }
  }
  return result;
}
