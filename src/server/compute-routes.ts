import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { principalOf, requireBearer } from './auth-hook.js';
import type { RouteOptions } from './user-routes.js';
import { tokenRoute } from './user-routes.js';

/** The compute API under `/compute/v1`: compute identities only. */
export const computeRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, options) => {
  await app.register(tokenRoute('compute'), {
    store: options.store,
    authenticator: options.authenticator,
    tokenRateLimit: options.tokenRateLimit,
  });
  await app.register(async (plain) => {
    const api = plain.withTypeProvider<TypeBoxTypeProvider>();
    requireBearer(plain, options.authenticator, 'compute');
    api.get(
      '/whoami',
      {
        schema: {
          summary: 'The calling compute identity and its scopes',
          tags: ['compute'],
          response: { 200: Type.Unknown() },
        },
      },
      async (request) => {
        const p = principalOf(request);
        return {
          kind: p.kind,
          identifier: p.identifier,
          scopes: p.scopes.map((s) => `${s.org}-${s.campaign}-${s.project}`),
        };
      },
    );
  });
};
