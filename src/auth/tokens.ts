import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';

/** The audience of a token: a user token is refused by the compute API and the reverse. */
export function audienceFor(kind: IdentityKind): string {
  return `athanor:${kind}`;
}

export const minSecretLength = 32;

/** How far a token's issue time may lie ahead of this server's clock (replicas' clocks differ). */
export const clockSkewSeconds = 60;

export function generateSecret(): string {
  return randomBytes(48).toString('base64url');
}

export interface TokenClaims {
  readonly kind: IdentityKind;
  readonly identifier: string;
  /** Issue time in milliseconds. */
  readonly issuedAtMs: number;
  /**
   * The identity's credentials stamp read together with the key hash that was verified: a token
   * is valid only while the identity still carries exactly this stamp.
   */
  readonly credentialsStamp: string;
  /** When the token stops being valid, in milliseconds. */
  readonly expiresAtMs: number;
}

function checkSecret(secret: string): Uint8Array {
  if (secret.length < minSecretLength) {
    throw new AthanorError(
      'invalid_config',
      `ATHANOR_JWT_SECRET must be at least ${minSecretLength} characters; unset it to let Athanor generate one`,
    );
  }
  return new TextEncoder().encode(secret);
}

/**
 * Signs with the first secret and verifies against every secret given, so a rotated-out secret
 * keeps its tokens valid during the grace window.
 */
export class TokenSigner {
  readonly #keys: readonly Uint8Array[];

  constructor(secrets: string | readonly string[]) {
    const list = typeof secrets === 'string' ? [secrets] : secrets;
    if (list.length === 0) throw new AthanorError('invalid_config', 'no JWT signing secret');
    this.#keys = list.map(checkSecret);
  }

  async issue(
    kind: IdentityKind,
    identifier: string,
    ttlSeconds: number,
    credentialsStamp: string,
    now = Date.now(),
  ): Promise<string> {
    return new SignJWT({ kind, iat_ms: now, cred: credentialsStamp })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(identifier)
      .setAudience(audienceFor(kind))
      .setIssuer('athanor')
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + ttlSeconds)
      .sign(this.#keys[0] as Uint8Array);
  }

  /**
   * Verifies signature, audience, expiry (required) and issue time (required, not in the future
   * beyond the clock skew); every failure is the same 401 for the caller.
   */
  async verify(token: string, expectedKind: IdentityKind, now = Date.now()): Promise<TokenClaims> {
    let lastError: unknown;
    for (const key of this.#keys) {
      try {
        return await this.#verifyWith(key, token, expectedKind, now);
      } catch (cause) {
        lastError = cause;
        if (!(cause instanceof joseErrors.JWSSignatureVerificationFailed)) break;
      }
    }
    const expired = lastError instanceof joseErrors.JWTExpired;
    throw new AthanorError(
      'unauthenticated',
      expired
        ? 'the token has expired: request a new one'
        : 'the token is not valid for this API: request a new one',
      { cause: lastError },
    );
  }

  async #verifyWith(key: Uint8Array, token: string, expectedKind: IdentityKind, now: number) {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['HS256'],
      audience: audienceFor(expectedKind),
      issuer: 'athanor',
      requiredClaims: ['exp', 'iat', 'sub'],
      currentDate: new Date(now),
    });
    const { kind, iat_ms: issuedAtMs, cred } = payload;
    if (
      kind !== expectedKind ||
      typeof payload.sub !== 'string' ||
      typeof issuedAtMs !== 'number' ||
      typeof cred !== 'string'
    ) {
      throw new Error('malformed claims');
    }
    const latestIssueMs = now + clockSkewSeconds * 1000;
    if (issuedAtMs > latestIssueMs || (payload.iat as number) * 1000 > latestIssueMs) {
      throw new Error('issued in the future');
    }
    return {
      kind: expectedKind,
      identifier: payload.sub,
      issuedAtMs,
      credentialsStamp: cred,
      expiresAtMs: (payload.exp as number) * 1000,
    };
  }
}
