import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/principal.js';
import { isAthanorError } from '../../domain/errors.js';
import type { Authenticator } from '../../service/authenticator.js';
import { listIdentityRoles } from '../../service/identity-roles.js';
import type { Store } from '../../store/open-store.js';

/** The signed-in user of a console request. */
export interface ConsoleUser {
  readonly principal: Principal;
  readonly admin: boolean;
  /** The token every form of this session carries. */
  readonly csrf: string;
}

export const sessionCookie = 'athanor_session';
export const signinCookie = 'athanor_signin';

/**
 * Console sessions are user API tokens kept in an HttpOnly cookie: checking one is the API's own
 * check, so a disable, key rotation, scope narrowing or expiry ends the session as soon as the
 * authenticator's identity cache turns over (2 s), on every replica.
 */
export class ConsoleSessions {
  readonly #csrfKey: Buffer;

  constructor(
    private readonly store: Store,
    private readonly authenticator: Authenticator,
    private readonly path: string,
  ) {
    // The form tokens are MACs of cookie values no other origin can read (the session token, the
    // sign-in challenge): their secrecy is the cookie's, so every replica derives the same tokens
    // without sharing a key, and a rotated JWT secret does not void open forms.
    this.#csrfKey = createHmac('sha256', 'athanor console csrf').update(path).digest();
  }

  async signIn(identifier: string, key: string): Promise<{ token: string; maxAgeSeconds: number }> {
    const issued = await this.authenticator.issueToken('user', identifier, key);
    return { token: issued.access_token, maxAgeSeconds: issued.expires_in };
  }

  /** The session's user, or undefined when there is none or it ended. */
  async current(request: FastifyRequest): Promise<ConsoleUser | undefined> {
    const token = request.cookies[sessionCookie];
    if (!token) return undefined;
    let principal: Principal;
    try {
      principal = await this.authenticator.authenticate(token, 'user');
    } catch (error) {
      if (isAthanorError(error) && error.code === 'unauthenticated') return undefined;
      throw error;
    }
    const roles = await listIdentityRoles(this.store, { kind: 'user', identifier: principal.identifier });
    return { principal, admin: roles.includes('admin'), csrf: this.#mac(`session:${token}`) };
  }

  /** A fresh pre-session value for the sign-in form, and the form token bound to it. */
  signinChallenge(request: FastifyRequest, reply: FastifyReply): string {
    let value = request.cookies[signinCookie];
    if (!value || !/^[A-Za-z0-9_-]{32}$/.test(value)) {
      value = randomBytes(24).toString('base64url');
      void reply.setCookie(signinCookie, value, this.#cookieOptions(request, 600));
    }
    return this.#mac(`signin:${value}`);
  }

  signinTokenMatches(request: FastifyRequest, sent: unknown): boolean {
    const value = request.cookies[signinCookie];
    return value !== undefined && tokensEqual(this.#mac(`signin:${value}`), sent);
  }

  setSession(request: FastifyRequest, reply: FastifyReply, token: string, maxAgeSeconds: number): void {
    void reply.setCookie(sessionCookie, token, this.#cookieOptions(request, maxAgeSeconds));
    void reply.clearCookie(signinCookie, { path: this.path });
  }

  clearSession(request: FastifyRequest, reply: FastifyReply): void {
    void reply.clearCookie(sessionCookie, this.#cookieOptions(request, 0));
  }

  #cookieOptions(request: FastifyRequest, maxAgeSeconds: number) {
    return {
      path: this.path,
      httpOnly: true,
      sameSite: 'strict' as const,
      // request.protocol follows X-Forwarded-Proto only when ATHANOR_TRUST_PROXY=1.
      secure: request.protocol === 'https',
      maxAge: maxAgeSeconds,
    };
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#csrfKey).update(text).digest('base64url');
  }
}

export function tokensEqual(expected: string, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}
