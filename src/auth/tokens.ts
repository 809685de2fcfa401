import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';

/** The audience of a token: a user token is refused by the compute API and the reverse. */
export function audienceFor(kind: IdentityKind): string {
  return `athanor:${kind}`;
}

export const minSecretLength = 32;

export function generateSecret(): string {
  return randomBytes(48).toString('base64url');
}

export interface TokenClaims {
  readonly kind: IdentityKind;
  readonly identifier: string;
  /** Issue time in milliseconds: compared with the identity's credentials change to revoke. */
  readonly issuedAtMs: number;
}

export class TokenSigner {
  readonly #key: Uint8Array;

  constructor(secret: string) {
    if (secret.length < minSecretLength) {
      throw new AthanorError(
        'invalid_config',
        `ATHANOR_JWT_SECRET must be at least ${minSecretLength} characters; unset it to let Athanor generate one`,
      );
    }
    this.#key = new TextEncoder().encode(secret);
  }

  async issue(kind: IdentityKind, identifier: string, ttlSeconds: number, now = Date.now()): Promise<string> {
    return new SignJWT({ kind, iat_ms: now })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(identifier)
      .setAudience(audienceFor(kind))
      .setIssuer('athanor')
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + ttlSeconds)
      .sign(this.#key);
  }

  /** Verifies signature, audience and expiry; every failure is the same 401 for the caller. */
  async verify(token: string, expectedKind: IdentityKind): Promise<TokenClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        audience: audienceFor(expectedKind),
        issuer: 'athanor',
      });
      const kind = payload.kind;
      const issuedAtMs = payload.iat_ms;
      if (kind !== expectedKind || typeof payload.sub !== 'string' || typeof issuedAtMs !== 'number') {
        throw new Error('malformed claims');
      }
      return { kind: expectedKind, identifier: payload.sub, issuedAtMs };
    } catch (cause) {
      const expired = cause instanceof joseErrors.JWTExpired;
      throw new AthanorError(
        'unauthenticated',
        expired
          ? 'the token has expired: request a new one'
          : 'the token is not valid for this API: request a new one',
        { cause },
      );
    }
  }
}
