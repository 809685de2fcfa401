import { generateSecret, TokenSigner } from '../auth/tokens.js';
import { AthanorError } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import { getOrCreateSetting, getSetting, putSetting } from '../store/queries/settings.js';
import { audited } from './audit.js';

/** Settings rows holding the generated secrets; backups leave every `jwt_secret*` row out. */
const currentKey = 'jwt_secret';
const previousKey = 'jwt_secret_previous';

interface PreviousSecret {
  readonly secret: string;
  /** ISO instant after which tokens signed with it are refused. */
  readonly until: string;
}

/** Where the secrets come from: the environment (fixed) or the state store (generated, rotatable). */
export interface JwtSecretSource {
  /** `ATHANOR_JWT_SECRET` / `_FILE`; when set, the state store is not used. */
  readonly configured: string | undefined;
  /** `ATHANOR_JWT_PREVIOUS_SECRET` / `_FILE`: still accepted, never used to sign. */
  readonly configuredPrevious?: string | undefined;
}

function parsePrevious(text: string | undefined): PreviousSecret | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as PreviousSecret;
    return typeof value.secret === 'string' && typeof value.until === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The secrets valid now, the signing one first; generates the first one when there is none. */
export async function loadJwtSecrets(store: Store, source: JwtSecretSource, now = new Date()) {
  if (source.configured !== undefined) {
    return source.configuredPrevious === undefined
      ? [source.configured]
      : [source.configured, source.configuredPrevious];
  }
  const current = await getOrCreateSetting(store.db, currentKey, generateSecret(), now.toISOString());
  const previous = parsePrevious(await getSetting(store.db, previousKey));
  return previous && Date.parse(previous.until) > now.getTime() ? [current, previous.secret] : [current];
}

/**
 * Signers that follow the stored secrets: re-read at most every `refreshMs`, and at once (at most
 * once a second) when a token fails to verify, so a rotation on one replica reaches the others.
 */
export class JwtKeyring {
  #signer: TokenSigner;
  #loadedAt: number;
  #reloading: Promise<TokenSigner> | undefined;

  private constructor(
    private readonly store: Store,
    private readonly source: JwtSecretSource,
    signer: TokenSigner,
    private readonly refreshMs: number,
  ) {
    this.#signer = signer;
    this.#loadedAt = Date.now();
  }

  static async open(store: Store, source: JwtSecretSource, refreshMs = 5000): Promise<JwtKeyring> {
    return new JwtKeyring(store, source, new TokenSigner(await loadJwtSecrets(store, source)), refreshMs);
  }

  /** The signer to use now. */
  async signer(): Promise<TokenSigner> {
    if (this.source.configured !== undefined || Date.now() - this.#loadedAt < this.refreshMs)
      return this.#signer;
    return this.#reload();
  }

  /** A fresher signer after a verification failure, or undefined when it cannot differ yet. */
  async refreshed(): Promise<TokenSigner | undefined> {
    if (this.source.configured !== undefined || Date.now() - this.#loadedAt < 1000) return undefined;
    return this.#reload();
  }

  #reload(): Promise<TokenSigner> {
    this.#reloading ??= loadJwtSecrets(this.store, this.source)
      .then((secrets) => {
        this.#signer = new TokenSigner(secrets);
        this.#loadedAt = Date.now();
        return this.#signer;
      })
      .finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }
}

/**
 * Replaces the stored signing secret. Tokens signed with the old one stay valid for
 * `graceSeconds` (default: one token lifetime), then stop working; every replica follows within
 * seconds. Refused when the secret comes from the environment: rotate it there.
 */
export async function rotateJwtSecret(
  store: Store,
  actor: string,
  options: { configured: string | undefined; graceSeconds: number },
): Promise<{ previousValidUntil: string }> {
  if (options.configured !== undefined) {
    throw new AthanorError(
      'invalid_argument',
      'the JWT secret comes from ATHANOR_JWT_SECRET(_FILE): set the new secret there and the old one ' +
        'in ATHANOR_JWT_PREVIOUS_SECRET(_FILE) for one token lifetime, then restart the servers',
    );
  }
  return audited(store, { actor, action: 'token.rotate-secret' }, async (trx) => {
    const now = new Date();
    const until = new Date(now.getTime() + options.graceSeconds * 1000).toISOString();
    const old = await getSetting(trx, currentKey);
    if (old !== undefined) {
      await putSetting(trx, previousKey, JSON.stringify({ secret: old, until }), now.toISOString());
    }
    await putSetting(trx, currentKey, generateSecret(), now.toISOString());
    return { result: { previousValidUntil: until }, details: { graceSeconds: options.graceSeconds } };
  });
}
