import type { Kysely } from 'kysely';
import type { IdentityKind } from '../../domain/identifier.js';
import type { Database, IdentityRolesTable } from '../schema.js';

export type Role = IdentityRolesTable['role'];

export async function listRoles(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<Role[]> {
  const rows = await db
    .selectFrom('identity_roles')
    .select('role')
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .orderBy('role')
    .execute();
  return rows.map((r) => r.role);
}

/** Roles of every identity that holds one, keyed `kind:identifier`. */
export async function listRolesByIdentity(db: Kysely<Database>): Promise<Map<string, Role[]>> {
  const rows = await db.selectFrom('identity_roles').select(['kind', 'identifier', 'role']).execute();
  const byIdentity = new Map<string, Role[]>();
  for (const row of rows) {
    const key = `${row.kind}:${row.identifier}`;
    byIdentity.set(key, [...(byIdentity.get(key) ?? []), row.role]);
  }
  return byIdentity;
}

/** Grants a role; false when the identity already held it. */
export async function insertRole(
  db: Kysely<Database>,
  row: { kind: IdentityKind; identifier: string; role: Role; granted_at: string; granted_by: string },
): Promise<boolean> {
  const held = await listRoles(db, row.kind, row.identifier);
  if (held.includes(row.role)) return false;
  await db.insertInto('identity_roles').values(row).execute();
  return true;
}

/** Withdraws a role; false when the identity did not hold it. */
export async function deleteRole(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
  role: Role,
): Promise<boolean> {
  const removed = await db
    .deleteFrom('identity_roles')
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .where('role', '=', role)
    .returning('role')
    .execute();
  return removed.length > 0;
}
