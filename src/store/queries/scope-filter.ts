import type { Expression, ExpressionBuilder, RawBuilder, SqlBool } from 'kysely';
import { sql } from 'kysely';
import type { Scope } from '../../domain/scope.js';

/**
 * A condition: `column` (a specific `org-campaign-project` text) lies in one of `scopes`.
 * A wildcard scope becomes a prefix comparison, so `org-*-*` matches `org-…` exactly and a
 * `_` in a name is never a LIKE wildcard.
 */
export function scopeIn<DB, TB extends keyof DB>(
  _eb: ExpressionBuilder<DB, TB>,
  column: string,
  scopes: readonly Scope[],
): Expression<SqlBool> {
  return scopeCondition(column, scopes);
}

/** The same condition as raw SQL, for hand-written statements. */
export function scopeCondition(column: string, scopes: readonly Scope[]): RawBuilder<SqlBool> {
  if (scopes.length === 0) return sql<SqlBool>`1 = 0`;
  const ref = sql.ref(column);
  const conditions = scopes.map((scope): Expression<SqlBool> => {
    if (scope.org === '*') return sql<SqlBool>`1 = 1`;
    if (scope.campaign === '*') return prefix(ref, `${scope.org}-`);
    if (scope.project === '*') return prefix(ref, `${scope.org}-${scope.campaign}-`);
    return sql<SqlBool>`${ref} = ${`${scope.org}-${scope.campaign}-${scope.project}`}`;
  });
  return sql<SqlBool>`(${sql.join(conditions, sql` or `)})`;
}

function prefix(ref: ReturnType<typeof sql.ref>, text: string): Expression<SqlBool> {
  return sql<SqlBool>`substr(${ref}, 1, ${text.length}) = ${text}`;
}
