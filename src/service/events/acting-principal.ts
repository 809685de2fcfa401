import type { Principal } from '../../auth/principal.js';
import { AthanorError } from '../../domain/errors.js';
import { parseScope } from '../../domain/scope.js';
import type { Store } from '../../store/open-store.js';
import { findIdentity, listScopes } from '../../store/queries/identities.js';
import { listRoles } from '../../store/queries/identity-roles.js';

/**
 * The identity named `kind:identifier` (as objects record who made them) with its scopes now:
 * webhooks deliver and strategies act with what their owner may do today, nothing more.
 * Undefined when it was removed, disabled or expired.
 */
export async function currentPrincipal(store: Store, name: string): Promise<Principal | undefined> {
  const [kind, ...rest] = name.split(':');
  const identifier = rest.join(':');
  if ((kind !== 'user' && kind !== 'compute') || identifier === '') return undefined;
  const identity = await findIdentity(store.db, kind, identifier);
  if (!identity || identity.disabled) return undefined;
  if (identity.expires_at !== null && identity.expires_at < new Date().toISOString()) return undefined;
  const scopes = (await listScopes(store.db, kind, identifier)).map(parseScope);
  return { kind, identifier, scopes };
}

/** True when the identity holds the `admin` role now: it reads the operator scope's events. */
export async function readsOperatorEvents(store: Store, principal: Principal): Promise<boolean> {
  if (principal.kind !== 'user') return false;
  return (await listRoles(store.db, principal.kind, principal.identifier)).includes('admin');
}

export function ownerGone(name: string, what: string): AthanorError {
  return new AthanorError(
    'forbidden',
    `${what} belongs to ${name}, which was removed, disabled or expired: an operator can enable it again, or remove ${what}`,
  );
}
