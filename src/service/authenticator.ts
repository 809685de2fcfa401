import { isActive } from './identities.js';
import type { Principal } from '../auth/principal.js';
import { generateSecret, TokenSigner } from '../auth/tokens.js';
import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';
import { parseScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import { findIdentity, listScopes } from '../store/queries/identities.js';
import { getOrCreateSetting } from '../store/queries/settings.js';
import { authenticateIdentity } from './identities.js';

interface CachedIdentity {
  readonly loadedAt: number;
  readonly state:
    | { readonly exists: false }
    | {
        readonly exists: true;
        readonly disabled: number;
        readonly expiresAt: string | null;
        readonly credentialsChangedAtMs: number;
        readonly scopes: readonly string[];
      };
}

/** The JWT secret: ATHANOR_JWT_SECRET, else one generated once and kept in the state store. */
export async function resolveJwtSecret(store: Store, configured: string | undefined): Promise<string> {
  if (configured !== undefined) return configured;
  return getOrCreateSetting(store.db, 'jwt_secret', generateSecret(), new Date().toISOString());
}

/**
 * Issues tokens for keys and turns tokens into principals. Identity state (disabled, expiry,
 * key changes, scopes) is re-read at most `cacheTtlMs` after it changed, so a revocation reaches
 * every replica within that time without a database read per request.
 */
export class Authenticator {
  readonly #cache = new Map<string, CachedIdentity>();

  constructor(
    private readonly store: Store,
    private readonly signer: TokenSigner,
    private readonly tokenTtlSeconds: number,
    private readonly cacheTtlMs = 2000,
  ) {}

  static async create(store: Store, options: { jwtSecret: string | undefined; tokenTtlSeconds: number }) {
    const secret = await resolveJwtSecret(store, options.jwtSecret);
    return new Authenticator(store, new TokenSigner(secret), options.tokenTtlSeconds);
  }

  async issueToken(kind: IdentityKind, identifier: string, key: string) {
    const identity = await authenticateIdentity(this.store, { kind, identifier }, key);
    // Tokens must postdate the credential change they were issued under, even within one millisecond.
    const now = Math.max(Date.now(), Date.parse(identity.credentialsChangedAt));
    return {
      access_token: await this.signer.issue(kind, identifier, this.tokenTtlSeconds, now),
      token_type: 'bearer' as const,
      expires_in: this.tokenTtlSeconds,
    };
  }

  async authenticate(token: string, kind: IdentityKind): Promise<Principal> {
    const claims = await this.signer.verify(token, kind);
    const cached = await this.#load(kind, claims.identifier);
    const state = cached.state;
    const refused = () => new AthanorError('unauthenticated', 'the token was revoked: request a new one');
    if (!state.exists) throw refused();
    if (!isActive({ disabled: state.disabled, expires_at: state.expiresAt }, new Date())) throw refused();
    if (claims.issuedAtMs < state.credentialsChangedAtMs) throw refused();
    return { kind, identifier: claims.identifier, scopes: state.scopes.map(parseScope) };
  }

  async #load(kind: IdentityKind, identifier: string): Promise<CachedIdentity> {
    const cacheKey = `${kind}:${identifier}`;
    const hit = this.#cache.get(cacheKey);
    if (hit && Date.now() - hit.loadedAt < this.cacheTtlMs) return hit;
    const row = await findIdentity(this.store.db, kind, identifier);
    const entry: CachedIdentity = row
      ? {
          loadedAt: Date.now(),
          state: {
            exists: true,
            disabled: row.disabled,
            expiresAt: row.expires_at,
            credentialsChangedAtMs: Date.parse(row.credentials_changed_at),
            scopes: await listScopes(this.store.db, kind, identifier),
          },
        }
      : { loadedAt: Date.now(), state: { exists: false } };
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(cacheKey, entry);
    return entry;
  }
}
