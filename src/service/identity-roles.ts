import { AthanorError } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import * as identityQueries from '../store/queries/identities.js';
import type { Role } from '../store/queries/identity-roles.js';
import * as queries from '../store/queries/identity-roles.js';
import { audited } from './audit.js';
import type { IdentityRef } from './identities.js';
import { nextCredentialsStamp } from './identities.js';

export type { Role };

/** Every role there is; `admin` opens the console's operator pages. */
export const roles: readonly Role[] = ['admin'];

export function parseRole(text: string): Role {
  const role = roles.find((r) => r === text);
  if (!role) {
    throw new AthanorError('invalid_argument', `'${text}' is not a role; the roles are: ${roles.join(', ')}`);
  }
  return role;
}

async function requireUser(store: Store, ref: IdentityRef, db = store.db) {
  if (ref.kind !== 'user') {
    throw new AthanorError(
      'invalid_argument',
      `roles are for user identities; '${ref.identifier}' is a ${ref.kind} identity`,
    );
  }
  const row = await identityQueries.findIdentity(db, ref.kind, ref.identifier);
  if (!row) {
    throw new AthanorError(
      'identity_not_found',
      `no ${ref.kind} identity '${ref.identifier}': 'athanor identity list -t ${ref.kind}' shows the existing ones`,
    );
  }
  return row;
}

/** Grants a role to a user identity; audited. Granting a held role changes nothing. */
export async function grantRole(
  store: Store,
  actor: string,
  ref: IdentityRef,
  role: Role,
): Promise<{ granted: boolean; roles: Role[] }> {
  const target = `${ref.kind}:${ref.identifier}`;
  return audited(store, { actor, action: 'identity.add-role', target }, async (trx) => {
    await requireUser(store, ref, trx);
    const granted = await queries.insertRole(trx, {
      kind: ref.kind,
      identifier: ref.identifier,
      role,
      granted_at: new Date().toISOString(),
      granted_by: actor,
    });
    return {
      result: { granted, roles: await queries.listRoles(trx, ref.kind, ref.identifier) },
      details: { role, granted },
    };
  });
}

/**
 * Withdraws a role; audited. Like a narrowed scope, it revokes the identity's tokens and console
 * sessions issued before, so the role stops working at once.
 */
export async function revokeRole(
  store: Store,
  actor: string,
  ref: IdentityRef,
  role: Role,
): Promise<{ revoked: boolean; roles: Role[] }> {
  const target = `${ref.kind}:${ref.identifier}`;
  return audited(store, { actor, action: 'identity.remove-role', target }, async (trx) => {
    const row = await requireUser(store, ref, trx);
    const revoked = await queries.deleteRole(trx, ref.kind, ref.identifier, role);
    if (revoked) {
      const now = new Date().toISOString();
      await identityQueries.updateIdentity(trx, ref.kind, ref.identifier, {
        updated_at: now,
        credentials_changed_at: nextCredentialsStamp(row.credentials_changed_at, now),
      });
    }
    return {
      result: { revoked, roles: await queries.listRoles(trx, ref.kind, ref.identifier) },
      details: { role, revoked },
    };
  });
}

export async function listIdentityRoles(store: Store, ref: IdentityRef): Promise<Role[]> {
  return queries.listRoles(store.db, ref.kind, ref.identifier);
}

/** Roles of every identity that holds one, keyed `kind:identifier`. */
export async function listRolesByIdentity(store: Store): Promise<Map<string, Role[]>> {
  return queries.listRolesByIdentity(store.db);
}
