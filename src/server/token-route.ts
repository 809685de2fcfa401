import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { IdentityKind } from '../domain/identifier.js';
import * as S from './schemas.js';
import type { RouteOptions } from './route-options.js';

/**
 * `POST <prefix>/token`: OAuth2 password form or JSON; the same 401 for every refusal. Key checks
 * are limited per client address and backed off per identity and address (see LoginThrottle).
 */
export function tokenRoute(kind: IdentityKind): FastifyPluginAsyncTypebox<RouteOptions> {
  return async (app, { authenticator }) => {
    app.post(
      '/token',
      {
        config: { writesInMaintenance: true },
        schema: {
          summary: `Exchange a ${kind} identity and key for a bearer token`,
          tags: ['auth'],
          body: S.TokenRequest,
          response: { 200: S.TokenResponse },
        },
      },
      async (request) =>
        authenticator.issueToken(kind, request.body.username, request.body.password, request.ip),
    );
  };
}
