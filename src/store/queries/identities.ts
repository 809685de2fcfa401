import type { Kysely, Selectable } from 'kysely';
import type { IdentityKind } from '../../domain/identifier.js';
import type { Database, IdentitiesTable } from '../schema.js';

export type IdentityRow = Selectable<IdentitiesTable>;

export async function findIdentity(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<IdentityRow | undefined> {
  return db
    .selectFrom('identities')
    .selectAll()
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .executeTakeFirst();
}

export async function insertIdentity(db: Kysely<Database>, row: IdentityRow): Promise<void> {
  await db.insertInto('identities').values(row).execute();
}

export async function updateIdentity(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
  changes: Partial<Omit<IdentityRow, 'kind' | 'identifier'>>,
): Promise<void> {
  await db
    .updateTable('identities')
    .set(changes)
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .execute();
}

export async function deleteIdentity(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<void> {
  await db.deleteFrom('identities').where('kind', '=', kind).where('identifier', '=', identifier).execute();
}

export async function listIdentities(
  db: Kysely<Database>,
  kind: IdentityKind | undefined,
): Promise<IdentityRow[]> {
  let query = db.selectFrom('identities').selectAll().orderBy('kind').orderBy('identifier');
  if (kind) query = query.where('kind', '=', kind);
  return query.execute();
}

export async function listScopes(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<string[]> {
  const rows = await db
    .selectFrom('identity_scopes')
    .select('scope')
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .orderBy('scope')
    .execute();
  return rows.map((r) => r.scope);
}

/** Scopes of many identities at once, keyed `kind:identifier`. */
export async function listScopesByIdentity(
  db: Kysely<Database>,
  kind: IdentityKind | undefined,
): Promise<Map<string, string[]>> {
  let query = db.selectFrom('identity_scopes').select(['kind', 'identifier', 'scope']).orderBy('scope');
  if (kind) query = query.where('kind', '=', kind);
  const byIdentity = new Map<string, string[]>();
  for (const row of await query.execute()) {
    const key = `${row.kind}:${row.identifier}`;
    byIdentity.set(key, [...(byIdentity.get(key) ?? []), row.scope]);
  }
  return byIdentity;
}

/** Inserts the scopes the identity does not hold yet; returns those added. */
export async function addScopes(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
  scopes: readonly string[],
  now: string,
): Promise<string[]> {
  const held = new Set(await listScopes(db, kind, identifier));
  const added = [...new Set(scopes)].filter((s) => !held.has(s));
  if (added.length > 0) {
    await db
      .insertInto('identity_scopes')
      .values(added.map((scope) => ({ kind, identifier, scope, created_at: now })))
      .execute();
  }
  return added;
}

/** Deletes the given scopes; returns those the identity actually held. */
export async function removeScopes(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
  scopes: readonly string[],
): Promise<string[]> {
  if (scopes.length === 0) return [];
  const removed = await db
    .deleteFrom('identity_scopes')
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .where('scope', 'in', [...scopes])
    .returning('scope')
    .execute();
  return removed.map((r) => r.scope);
}
