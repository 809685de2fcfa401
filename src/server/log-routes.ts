import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import { AthanorError } from '../domain/errors.js';
import type { ObjectStore } from '../objects/object-store.js';
import { attachAttemptLog, openAttemptLog } from '../service/attempt-logs.js';
import type { Authenticator } from '../service/authenticator.js';
import type { Store } from '../store/open-store.js';
import { principalOf, requireBearer } from './auth-hook.js';
import * as S from './schemas.js';

export interface LogRouteOptions {
  readonly store: Store;
  readonly objects: ObjectStore;
  readonly authenticator: Authenticator;
}

/** `PUT /compute/v1/tasks/{id}/log`: a compute service attaches an attempt's log, once. */
export const computeLogRoutes: FastifyPluginAsyncTypebox<LogRouteOptions> = async (plain, options) => {
  const api = plain.withTypeProvider<TypeBoxTypeProvider>();
  requireBearer(plain, options.authenticator, 'compute');
  plain.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  api.put(
    '/tasks/:id/log',
    {
      // An interrupted attempt's log may arrive while the platform is in maintenance.
      config: { writesInMaintenance: true },
      schema: {
        summary: "Attach an attempt's log (streamed application/octet-stream), once, also after it ended",
        tags: ['compute'],
        params: Type.Object({ id: S.Key }),
        querystring: Type.Object({
          leaseToken: Type.Integer({ ...S.LeaseToken, description: "the attempt's lease token" }),
        }),
        response: {
          200: Type.Object({ task: Type.String(), sizeBytes: Type.Integer(), sha256: Type.String() }),
        },
      },
    },
    async (request) => {
      if (request.headers['content-type'] !== 'application/octet-stream') {
        throw new AthanorError('invalid_argument', 'send the log as an application/octet-stream body');
      }
      return attachAttemptLog(options.store, options.objects, principalOf(request), {
        taskId: request.params.id,
        leaseToken: request.query.leaseToken,
        body: request.body as Readable,
      });
    },
  );
};

/** `GET /v1/tasks/{id}/attempts/{n}/log`: the log of a task's nth attempt, streamed. */
export const userLogRoutes: FastifyPluginAsyncTypebox<LogRouteOptions> = async (plain, options) => {
  const api = plain.withTypeProvider<TypeBoxTypeProvider>();
  requireBearer(plain, options.authenticator, 'user');
  api.get(
    '/tasks/:id/attempts/:n/log',
    {
      schema: {
        summary: "The log of a task's nth attempt (1 for the first), streamed as text",
        tags: ['user'],
        params: Type.Object({ id: S.Key, n: Type.Integer({ minimum: 1 }) }),
        response: { 200: Type.Unknown({ description: 'the log as text/plain lines' }) },
      },
    },
    async (request, reply) => {
      const log = await openAttemptLog(
        options.store,
        options.objects,
        principalOf(request),
        request.params.id,
        request.params.n,
      );
      void reply
        .header('content-type', 'text/plain; charset=utf-8')
        .header('content-length', String(log.sizeBytes))
        .header('x-athanor-sha256', log.sha256);
      return reply.send(log.stream);
    },
  );
};
