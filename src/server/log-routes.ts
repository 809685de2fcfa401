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

/**
 * `GET /v1/tasks/{id}/attempts/{n}/log`: the log of a task's nth attempt, streamed; while it runs,
 * what it appended so far (`x-athanor-log-complete: false`).
 */
export const userLogRoutes: FastifyPluginAsyncTypebox<LogRouteOptions> = async (plain, options) => {
  const api = plain.withTypeProvider<TypeBoxTypeProvider>();
  requireBearer(plain, options.authenticator, 'user');
  api.get(
    '/tasks/:id/attempts/:n/log',
    {
      schema: {
        summary: "The log of a task's nth attempt (1 for the first), streamed as text",
        description:
          'Once the attempt ended and its compute service uploaded its log: the whole log, with ' +
          '`x-athanor-log-complete: true`. Before: what the attempt appended on its heartbeats so far, ' +
          'with `x-athanor-log-complete: false` (read again from `offset` = the bytes already read to ' +
          'get what came since). `x-athanor-attempt-running` says whether the attempt still runs.',
        tags: ['user'],
        params: Type.Object({ id: S.Key, n: Type.Integer({ minimum: 1 }) }),
        querystring: Type.Object({
          offset: Type.Optional(
            Type.Integer({ minimum: 0, description: 'skip this many bytes of the log (those already read)' }),
          ),
        }),
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
        request.query.offset ?? 0,
      );
      void reply
        .header('content-type', 'text/plain; charset=utf-8')
        .header('x-athanor-log-complete', String(log.complete))
        .header('x-athanor-attempt-running', String(log.running));
      if (log.sizeBytes !== undefined) void reply.header('content-length', String(log.sizeBytes));
      if (log.sha256 !== undefined) void reply.header('x-athanor-sha256', log.sha256);
      return reply.send(log.stream);
    },
  );
};
