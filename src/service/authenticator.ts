import { isActive } from './identities.js';
import type { Principal } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';
import { parseScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import { findIdentity, listScopes } from '../store/queries/identities.js';
import { insertAuditEntry } from '../store/queries/audit.js';
import type { TokenClaims, TokenSigner } from '../auth/tokens.js';
import { JwtKeyring } from './jwt-secrets.js';
import type { ThrottleEvent } from './login-throttle.js';
import { LoginThrottle } from './login-throttle.js';
import type { AuthenticatedIdentity } from './identities.js';
import { authenticateIdentity } from './identities.js';

interface CachedIdentity {
  readonly loadedAt: number;
  readonly state:
    | { readonly exists: false }
    | {
        readonly exists: true;
        readonly disabled: number;
        readonly expiresAt: string | null;
        /** The stamp a token must carry (ISO text, compared exactly). */
        readonly credentialsChangedAt: string;
        readonly scopes: readonly string[];
      };
}

/** A token whose signature, audience and claims were checked by `signer` at `verifiedAt`. */
interface VerifiedToken {
  readonly signer: TokenSigner;
  readonly verifiedAt: number;
  readonly claims: TokenClaims;
}

/** How long a verified token is trusted without verifying its signature again. */
export const verifiedTokenTtlMs = 2000;

/** How an Authenticator is set up; the defaults are the server's. */
export interface AuthenticatorOptions {
  /** `ATHANOR_JWT_SECRET(_FILE)`; absent: generated once and kept in the state store. */
  readonly jwtSecret: string | undefined;
  /** `ATHANOR_JWT_PREVIOUS_SECRET(_FILE)`: still accepted during a rotation, never used to sign. */
  readonly jwtPreviousSecret?: string | undefined;
  readonly tokenTtlSeconds: number;
  /** Key checks per client address per minute on the token routes; default 60. */
  readonly tokenRateLimit?: number;
}

/**
 * Issues tokens for keys and turns tokens into principals. Identity state (disabled, expiry,
 * key changes, scopes) is re-read at most `cacheTtlMs` after it changed, so a revocation reaches
 * every replica within that time without a database read per request.
 */
export class Authenticator {
  readonly #cache = new Map<string, CachedIdentity>();
  readonly #verified = new Map<string, VerifiedToken>();
  readonly #throttle: LoginThrottle;

  constructor(
    private readonly store: Store,
    private readonly keyring: JwtKeyring,
    private readonly tokenTtlSeconds: number,
    tokenRateLimit = 60,
    private readonly cacheTtlMs = 2000,
  ) {
    this.#throttle = new LoginThrottle(tokenRateLimit, (event) => void this.#audit(event));
  }

  static async create(store: Store, options: AuthenticatorOptions) {
    const keyring = await JwtKeyring.open(store, {
      configured: options.jwtSecret,
      configuredPrevious: options.jwtPreviousSecret,
    });
    return new Authenticator(store, keyring, options.tokenTtlSeconds, options.tokenRateLimit);
  }

  /**
   * Checks a key and signs a token bound to the credentials stamp read with the key's hash: any
   * later key change, disable, scope removal or removal changes the stamp and kills the token.
   * `clientAddress` feeds the failed-key backoff and the per-address limit.
   */
  async issueToken(kind: IdentityKind, identifier: string, key: string, clientAddress = 'unknown') {
    const identity = await this.checkKey(kind, identifier, key, clientAddress);
    const signer = await this.keyring.signer();
    return {
      access_token: await signer.issue(kind, identifier, this.tokenTtlSeconds, identity.credentialsChangedAt),
      token_type: 'bearer' as const,
      expires_in: this.tokenTtlSeconds,
    };
  }

  /** Checks a key under the failed-key backoff and the per-address limit (console sign-in, tokens). */
  async checkKey(
    kind: IdentityKind,
    identifier: string,
    key: string,
    clientAddress = 'unknown',
  ): Promise<AuthenticatedIdentity> {
    const who = `${kind}:${identifier}`;
    this.#throttle.admit(who, clientAddress);
    let identity;
    try {
      identity = await authenticateIdentity(this.store, { kind, identifier }, key);
    } catch (error) {
      this.#throttle.failed(who, clientAddress);
      throw error;
    }
    this.#throttle.succeeded(who, clientAddress);
    return identity;
  }

  /** How long a token (and a console session) lasts, in seconds. */
  get tokenLifetimeSeconds(): number {
    return this.tokenTtlSeconds;
  }

  async authenticate(token: string, kind: IdentityKind): Promise<Principal> {
    const claims = await this.#verify(token, kind);
    const cached = await this.#load(kind, claims.identifier);
    const state = cached.state;
    const refused = () => new AthanorError('unauthenticated', 'the token was revoked: request a new one');
    if (!state.exists) throw refused();
    if (!isActive({ disabled: state.disabled, expires_at: state.expiresAt }, new Date())) throw refused();
    if (claims.credentialsStamp !== state.credentialsChangedAt) throw refused();
    return { kind, identifier: claims.identifier, scopes: state.scopes.map(parseScope) };
  }

  /**
   * The token's claims. A token verified a moment ago by the same signer is not verified again:
   * its signature cannot change, its expiry is checked on every use, and a new signer (a rotated
   * secret) verifies every token afresh. Identity state is checked by the caller on every request.
   */
  async #verify(token: string, kind: IdentityKind): Promise<TokenClaims> {
    const signer = await this.keyring.signer();
    const now = Date.now();
    const hit = this.#verified.get(token);
    if (
      hit?.signer === signer &&
      hit.claims.kind === kind &&
      now - hit.verifiedAt < verifiedTokenTtlMs &&
      now < hit.claims.expiresAtMs
    )
      return hit.claims;
    const claims = await this.#verifyUncached(token, kind);
    if (this.#verified.size >= 10_000) this.#verified.clear();
    this.#verified.set(token, { signer: await this.keyring.signer(), verifiedAt: now, claims });
    return claims;
  }

  async #verifyUncached(token: string, kind: IdentityKind): Promise<TokenClaims> {
    try {
      return await (await this.keyring.signer()).verify(token, kind);
    } catch (error) {
      // Another replica may have rotated the secret a moment ago.
      const fresher = await this.keyring.refreshed();
      if (!fresher) throw error;
      return fresher.verify(token, kind);
    }
  }

  async #audit(event: ThrottleEvent): Promise<void> {
    const entry =
      event.kind === 'backoff'
        ? { action: 'token.backoff', target: event.identity, details: { waitMs: event.waitMs } }
        : { action: 'token.address-limited', target: null, details: { limit: event.limit } };
    try {
      await insertAuditEntry(this.store.db, {
        at: new Date().toISOString(),
        actor: `address:${event.address}`,
        action: entry.action,
        target: entry.target,
        outcome: 'error',
        details: JSON.stringify(entry.details),
      });
    } catch {
      // The audit log must not turn a refused guess into a server error.
    }
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
            credentialsChangedAt: row.credentials_changed_at,
            scopes: await listScopes(this.store.db, kind, identifier),
          },
        }
      : { loadedAt: Date.now(), state: { exists: false } };
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(cacheKey, entry);
    return entry;
  }
}
