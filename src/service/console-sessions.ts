import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { generateSecret } from '../auth/tokens.js';
import { parseScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import * as queries from '../store/queries/console-sessions.js';
import { listScopes } from '../store/queries/identities.js';
import { getOrCreateSetting } from '../store/queries/settings.js';
import type { AuthenticatedIdentity } from './identities.js';
import { isActive } from './identities.js';

/** The settings row of the console's form-token key; backups leave it out. */
export const consoleCsrfSecretKey = 'console_csrf_secret';

function sha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Starts a session for a user whose key was just checked; returns the cookie value. Expired
 * sessions of anyone are swept here, so the table holds only live ones and the sign-outs nobody
 * made.
 */
export async function startConsoleSession(
  store: Store,
  identity: AuthenticatedIdentity,
  lifetimeSeconds: number,
  now = new Date(),
): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await queries.deleteExpiredConsoleSessions(store.db, now.toISOString());
  await queries.insertConsoleSession(store.db, {
    token_sha256: sha256(token),
    identifier: identity.identifier,
    credentials_stamp: identity.credentialsChangedAt,
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + lifetimeSeconds * 1000).toISOString(),
  });
  return token;
}

/**
 * The user a session cookie signs in, read afresh from the database on every request: a
 * sign-out, a disable, a key change, a narrowed scope or a withdrawn role (each moves the
 * identity's credentials stamp) ends the session on every replica at once.
 */
export async function resolveConsoleSession(
  store: Store,
  token: string,
  now = new Date(),
): Promise<Principal | undefined> {
  const row = await queries.findConsoleSession(store.db, sha256(token));
  if (!row) return undefined;
  const ended =
    Date.parse(row.session_expires_at) <= now.getTime() ||
    row.credentials_stamp !== row.credentials_changed_at ||
    !isActive(row, now);
  if (ended) {
    await queries.deleteConsoleSession(store.db, sha256(token));
    return undefined;
  }
  const scopes = await listScopes(store.db, 'user', row.identifier);
  return { kind: 'user', identifier: row.identifier, scopes: scopes.map(parseScope) };
}

/** Ends a session (signing out); a cookie that names no session is ignored. */
export async function endConsoleSession(store: Store, token: string): Promise<void> {
  await queries.deleteConsoleSession(store.db, sha256(token));
}

/**
 * The key of the console's form tokens: generated once and kept in the state store, so every
 * replica derives the same tokens and nobody can compute one from a session cookie alone.
 */
export async function consoleCsrfKey(store: Store): Promise<Buffer> {
  const secret = await getOrCreateSetting(
    store.db,
    consoleCsrfSecretKey,
    generateSecret(),
    new Date().toISOString(),
  );
  return createHmac('sha256', secret).update('athanor console csrf').digest();
}
