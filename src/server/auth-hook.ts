import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { IdentityKind } from '../domain/identifier.js';
import type { Authenticator } from '../service/authenticator.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The authenticated caller; routes behind `requireBearer` always have one. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AthanorError('unauthenticated', 'a bearer token is required');
  return request.principal;
}

/** Every route registered in `scope` after this needs a valid token of `kind`. */
export function requireBearer(
  scope: FastifyInstance,
  authenticator: Authenticator,
  kind: IdentityKind,
): void {
  scope.addHook('onRequest', async (request) => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match?.[1]) {
      throw new AthanorError(
        'unauthenticated',
        `a bearer token is required: POST your ${kind} identity and key to the token route`,
      );
    }
    request.principal = await authenticator.authenticate(match[1], kind);
  });
}
