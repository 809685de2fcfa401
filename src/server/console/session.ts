import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/principal.js';
import type { Authenticator } from '../../service/authenticator.js';
import {
  consoleCsrfKey,
  endConsoleSession,
  resolveConsoleSession,
  startConsoleSession,
} from '../../service/console-sessions.js';
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
 * Console sessions are rows of the state store named by a random cookie value (not API tokens:
 * a copied cookie opens nothing but this console, and only until the session ends). Every
 * request reads its row, so a sign-out, a disable, a key rotation, a narrowed scope or a
 * withdrawn role ends the session at once, on every replica.
 */
export class ConsoleSessions {
  private constructor(
    private readonly store: Store,
    private readonly authenticator: Authenticator,
    private readonly path: string,
    // The form tokens are MACs of cookie values no other origin can read (the session value, the
    // sign-in challenge) under a key generated once and kept in the state store: every replica
    // derives the same tokens, and knowing a cookie is not enough to compute its token.
    private readonly csrfKey: Buffer,
  ) {}

  static async open(store: Store, authenticator: Authenticator, path: string): Promise<ConsoleSessions> {
    return new ConsoleSessions(store, authenticator, path, await consoleCsrfKey(store));
  }

  async signIn(
    identifier: string,
    key: string,
    clientAddress: string,
  ): Promise<{ token: string; maxAgeSeconds: number }> {
    const identity = await this.authenticator.checkKey('user', identifier, key, clientAddress);
    const lifetimeSeconds = this.authenticator.tokenLifetimeSeconds;
    return {
      token: await startConsoleSession(this.store, identity, lifetimeSeconds),
      maxAgeSeconds: lifetimeSeconds,
    };
  }

  /** The session's user, or undefined when there is none or it ended. */
  async current(request: FastifyRequest): Promise<ConsoleUser | undefined> {
    const token = request.cookies[sessionCookie];
    if (!token) return undefined;
    const principal = await resolveConsoleSession(this.store, token);
    if (!principal) return undefined;
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

  /** Signs out: the session ends in the state store, not only in this browser. */
  async endSession(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = request.cookies[sessionCookie];
    if (token) await endConsoleSession(this.store, token);
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
    return createHmac('sha256', this.csrfKey).update(text).digest('base64url');
  }
}

export function tokensEqual(expected: string, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}
