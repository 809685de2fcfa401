import { generateKey, hashKey, verifyAgainstDummy, verifyKey } from '../auth/keys.js';
import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';
import { parseIdentifier, validateKey } from '../domain/identifier.js';
import { formatScope, parseScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import type { IdentityRow } from '../store/queries/identities.js';
import * as queries from '../store/queries/identities.js';
import { audited } from './audit.js';

/** An identity as shown to operators: never its key or hash. */
export interface IdentityView {
  readonly kind: IdentityKind;
  readonly identifier: string;
  readonly disabled: boolean;
  readonly expiresAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly scopes: readonly string[];
}

export interface IdentityRef {
  readonly kind: IdentityKind;
  readonly identifier: string;
}

function view(row: IdentityRow, scopes: readonly string[]): IdentityView {
  return {
    kind: row.kind,
    identifier: row.identifier,
    disabled: row.disabled === 1,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    scopes,
  };
}

function target(ref: IdentityRef): string {
  return `${ref.kind}:${ref.identifier}`;
}

function notFound(ref: IdentityRef): AthanorError {
  return new AthanorError(
    'identity_not_found',
    `no ${ref.kind} identity '${ref.identifier}': 'athanor identity list -t ${ref.kind}' shows the existing ones`,
  );
}

function parseExpiry(text: string | undefined): string | null {
  if (text === undefined) return null;
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) {
    throw new AthanorError(
      'invalid_argument',
      `'${text}' is not a date; use ISO 8601, e.g. 2027-01-31T00:00:00Z`,
    );
  }
  return at.toISOString();
}

function parseScopes(scopes: readonly string[]): string[] {
  if (scopes.length === 0) throw new AthanorError('invalid_argument', 'give at least one scope with -s');
  return scopes.map((s) => formatScope(parseScope(s)));
}

/**
 * A new credentials stamp, strictly later than the previous one even within one millisecond:
 * tokens are valid only while they carry the identity's current stamp exactly.
 */
export function nextCredentialsStamp(previous: string, now: string): string {
  const previousMs = Date.parse(previous);
  return Date.parse(now) > previousMs ? now : new Date(previousMs + 1).toISOString();
}

async function requireIdentity(store: Store, ref: IdentityRef, db = store.db): Promise<IdentityRow> {
  const row = await queries.findIdentity(db, ref.kind, ref.identifier);
  if (!row) throw notFound(ref);
  return row;
}

export interface AddIdentityInput extends IdentityRef {
  /** The key; when absent a strong random key is generated and returned once. */
  readonly key?: string | undefined;
  readonly expiresAt?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
}

export async function addIdentity(
  store: Store,
  actor: string,
  input: AddIdentityInput,
): Promise<{ identity: IdentityView; generatedKey: string | undefined }> {
  const ref = { kind: input.kind, identifier: input.identifier };
  return audited(store, { actor, action: 'identity.add', target: target(ref) }, async (trx) => {
    parseIdentifier(input.identifier);
    const generatedKey = input.key === undefined ? generateKey() : undefined;
    const key = validateKey(input.key ?? (generatedKey as string));
    const expiresAt = parseExpiry(input.expiresAt);
    const scopes = input.scopes?.length ? parseScopes(input.scopes) : [];
    if (await queries.findIdentity(trx, ref.kind, ref.identifier)) {
      throw new AthanorError(
        'identity_exists',
        `${ref.kind} identity '${ref.identifier}' already exists: use 'athanor identity set-key -t ${ref.kind} ` +
          `-i ${ref.identifier}' to change its key (its scopes are kept)`,
      );
    }
    const now = new Date().toISOString();
    const row: IdentityRow = {
      kind: ref.kind,
      identifier: ref.identifier,
      key_hash: await hashKey(key),
      disabled: 0,
      expires_at: expiresAt,
      created_at: now,
      updated_at: now,
      credentials_changed_at: now,
    };
    await queries.insertIdentity(trx, row);
    await queries.addScopes(trx, ref.kind, ref.identifier, scopes, now);
    return {
      result: { identity: view(row, scopes.sort()), generatedKey },
      details: { generatedKey: generatedKey !== undefined, expiresAt, scopes },
    };
  });
}

/** Rotates the key and keeps the scopes; tokens issued with the old key stop working. */
export async function setIdentityKey(
  store: Store,
  actor: string,
  ref: IdentityRef,
  key: string | undefined,
): Promise<{ generatedKey: string | undefined }> {
  return audited(store, { actor, action: 'identity.set-key', target: target(ref) }, async (trx) => {
    const generatedKey = key === undefined ? generateKey() : undefined;
    const keyHash = await hashKey(validateKey(key ?? (generatedKey as string)));
    const row = await requireIdentity(store, ref, trx);
    const now = new Date().toISOString();
    await queries.updateIdentity(trx, ref.kind, ref.identifier, {
      key_hash: keyHash,
      updated_at: now,
      credentials_changed_at: nextCredentialsStamp(row.credentials_changed_at, now),
    });
    return { result: { generatedKey }, details: { generatedKey: generatedKey !== undefined } };
  });
}

export async function addIdentityScopes(
  store: Store,
  actor: string,
  ref: IdentityRef,
  scopes: readonly string[],
): Promise<{ added: string[]; scopes: string[] }> {
  return audited(store, { actor, action: 'identity.add-scope', target: target(ref) }, async (trx) => {
    const parsed = parseScopes(scopes);
    await requireIdentity(store, ref, trx);
    const now = new Date().toISOString();
    const added = await queries.addScopes(trx, ref.kind, ref.identifier, parsed, now);
    if (added.length) await queries.updateIdentity(trx, ref.kind, ref.identifier, { updated_at: now });
    return {
      result: { added, scopes: await queries.listScopes(trx, ref.kind, ref.identifier) },
      details: { added },
    };
  });
}

export async function removeIdentityScopes(
  store: Store,
  actor: string,
  ref: IdentityRef,
  scopes: readonly string[],
): Promise<{ removed: string[]; scopes: string[] }> {
  return audited(store, { actor, action: 'identity.remove-scope', target: target(ref) }, async (trx) => {
    const parsed = parseScopes(scopes);
    const row = await requireIdentity(store, ref, trx);
    const removed = await queries.removeScopes(trx, ref.kind, ref.identifier, parsed);
    const now = new Date().toISOString();
    // Narrowing scopes revokes tokens issued before it, so a removed scope stops working at once.
    if (removed.length) {
      await queries.updateIdentity(trx, ref.kind, ref.identifier, {
        updated_at: now,
        credentials_changed_at: nextCredentialsStamp(row.credentials_changed_at, now),
      });
    }
    return {
      result: { removed, scopes: await queries.listScopes(trx, ref.kind, ref.identifier) },
      details: { removed },
    };
  });
}

export async function removeIdentity(store: Store, actor: string, ref: IdentityRef): Promise<void> {
  await audited(store, { actor, action: 'identity.remove', target: target(ref) }, async (trx) => {
    await requireIdentity(store, ref, trx);
    await queries.deleteIdentity(trx, ref.kind, ref.identifier);
    return { result: undefined };
  });
}

export async function setIdentityDisabled(
  store: Store,
  actor: string,
  ref: IdentityRef,
  disabled: boolean,
): Promise<void> {
  const action = disabled ? 'identity.disable' : 'identity.enable';
  await audited(store, { actor, action, target: target(ref) }, async (trx) => {
    const row = await requireIdentity(store, ref, trx);
    const now = new Date().toISOString();
    await queries.updateIdentity(trx, ref.kind, ref.identifier, {
      disabled: disabled ? 1 : 0,
      updated_at: now,
      ...(disabled ? { credentials_changed_at: nextCredentialsStamp(row.credentials_changed_at, now) } : {}),
    });
    return { result: undefined };
  });
}

/** Sets (or with `undefined`, clears) the instant after which the identity's key stops working. */
export async function setIdentityExpiry(
  store: Store,
  actor: string,
  ref: IdentityRef,
  expiresAt: string | undefined,
  options: { allowPast?: boolean } = {},
): Promise<void> {
  const expiry = parseExpiry(expiresAt);
  // A past instant disables the identity at once: almost always a typo, so it must be asked for.
  if (expiry !== null && !options.allowPast && Date.parse(expiry) <= Date.now()) {
    throw new AthanorError(
      'invalid_argument',
      `${expiry} is in the past: the identity would stop working at once; pass --force if that is what you want`,
    );
  }
  await audited(store, { actor, action: 'identity.set-expiry', target: target(ref) }, async (trx) => {
    await requireIdentity(store, ref, trx);
    await queries.updateIdentity(trx, ref.kind, ref.identifier, {
      expires_at: expiry,
      updated_at: new Date().toISOString(),
    });
    return { result: undefined, details: { expiresAt: expiry } };
  });
}

export async function showIdentity(store: Store, ref: IdentityRef): Promise<IdentityView> {
  const row = await requireIdentity(store, ref);
  return view(row, await queries.listScopes(store.db, ref.kind, ref.identifier));
}

export async function listIdentities(store: Store, kind: IdentityKind | undefined): Promise<IdentityView[]> {
  const rows = await queries.listIdentities(store.db, kind);
  const scopes = await queries.listScopesByIdentity(store.db, kind);
  return rows.map((row) => view(row, scopes.get(`${row.kind}:${row.identifier}`) ?? []));
}

export async function listIdentityScopes(store: Store, ref: IdentityRef): Promise<string[]> {
  await requireIdentity(store, ref);
  return queries.listScopes(store.db, ref.kind, ref.identifier);
}

/** An identity whose key was just verified, with what its tokens may do. */
export interface AuthenticatedIdentity extends IdentityRef {
  readonly scopes: readonly string[];
  readonly credentialsChangedAt: string;
}

/**
 * Checks a key. Unknown identifier, wrong key, disabled and expired all give the same error, so
 * the answer reveals nothing about which identities exist.
 */
export async function authenticateIdentity(
  store: Store,
  ref: IdentityRef,
  key: string,
  now: Date = new Date(),
): Promise<AuthenticatedIdentity> {
  const refused = () =>
    new AthanorError(
      'unauthenticated',
      `wrong identifier or key for ${ref.kind} identity, or it is disabled or expired`,
    );
  const row = await queries.findIdentity(store.db, ref.kind, ref.identifier);
  if (!row) {
    await verifyAgainstDummy(key);
    throw refused();
  }
  const keyMatches = await verifyKey(row.key_hash, key);
  if (!keyMatches || !isActive(row, now)) throw refused();
  return {
    kind: row.kind,
    identifier: row.identifier,
    scopes: await queries.listScopes(store.db, row.kind, row.identifier),
    credentialsChangedAt: row.credentials_changed_at,
  };
}

export function isActive(row: Pick<IdentityRow, 'disabled' | 'expires_at'>, now: Date): boolean {
  return row.disabled === 0 && (row.expires_at === null || new Date(row.expires_at) > now);
}
