import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import { AthanorError } from '../domain/errors.js';
import * as claims from '../service/claims.js';
import * as services from '../service/compute-services.js';
import * as leases from '../service/leases.js';
import { submitResult } from '../service/results.js';
import { getResult } from '../service/tasks.js';
import { principalOf, requireBearer } from './auth-hook.js';
import { principalView } from '../auth/principal.js';
import * as S from './schemas.js';
import type { ComputeRouteOptions } from './route-options.js';
import { Claim, claimOptions } from './route-options.js';
import { sendResultBytes } from './result-bytes.js';
import { tokenRoute } from './token-route.js';
import { longPollClaim } from './long-poll-claim.js';
import { maxBatchedResultBytes } from '../service/exchange.js';
import { HeartbeatBody, heartbeatReport } from './compute-route-schemas.js';
import { computeManagerRoutes } from './compute-manager-routes.js';

export type { ComputeRouteOptions } from './route-options.js';
export { Claim, claimOptions } from './route-options.js';

const LeaseToken = S.Body({ leaseToken: S.LeaseToken });

/** The compute API under `/compute/v1`: compute identities only. */
export const computeRoutes: FastifyPluginAsyncTypebox<ComputeRouteOptions> = async (app, options) => {
  const { store, objects, timings } = options;
  const closing = options.closing ?? new AbortController().signal;
  await app.register(tokenRoute('compute'), {
    store,
    authenticator: options.authenticator,
    tokenRateLimit: options.tokenRateLimit,
  });
  await app.register(async (plain) => {
    const api = plain.withTypeProvider<TypeBoxTypeProvider>();
    requireBearer(plain, options.authenticator, 'compute');
    // Result bodies stream straight to the object store: no body limit, never buffered whole.
    plain.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
    const tags = ['compute'];
    const ServiceParams = Type.Object({ id: S.Key });

    api.get(
      '/whoami',
      {
        schema: {
          summary: 'The calling compute identity and its scopes',
          tags,
          response: { 200: Type.Unknown() },
        },
      },
      async (request) => principalView(principalOf(request)),
    );

    api.post(
      '/services',
      {
        schema: {
          summary: 'Register a compute service',
          tags,
          body: S.Body({
            name: Type.String({ minLength: 1, maxLength: 200 }),
            hostname: Type.Optional(Type.String({ maxLength: 255 })),
            manager: Type.Optional(S.Key),
            launch: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          }),
          response: {
            200: Type.Object({
              id: Type.String(),
              leaseTtlMs: Type.Integer(),
              registrationTtlMs: Type.Integer(),
            }),
          },
        },
      },
      async (request) => services.registerService(store, principalOf(request), request.body, timings),
    );

    api.post(
      '/services/:id/heartbeat',
      {
        config: { writesInMaintenance: true },
        schema: {
          summary: 'Keep a registration and its leases alive; answers the tasks it still holds',
          description:
            'With `leases`, only the listed leases are extended and every other task leased to the service ' +
            'returns to waiting (a later result under such a lease gets 409). Without a body, every ' +
            'unexpired lease of the service is extended.',
          tags,
          params: ServiceParams,
          body: HeartbeatBody,
          response: {
            200: Type.Object({
              leases: Type.Array(Type.Object({ task: Type.String(), leaseToken: Type.Integer() })),
              leaseExpiresAt: Type.String(),
              drain: Type.Boolean({
                description: 'its manager scales in: finish the leases held, claim nothing more, exit',
              }),
            }),
          },
        },
        // A heartbeat without a body (as before leases were listed) means the empty object.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => {
        return services.heartbeat(
          store,
          principalOf(request),
          request.params.id,
          heartbeatReport(request.body),
          timings,
        );
      },
    );

    api.delete(
      '/services/:id',
      {
        config: { writesInMaintenance: true },
        schema: {
          summary: 'Deregister a compute service; the tasks it holds return to waiting',
          tags,
          params: ServiceParams,
          response: { 200: Type.Object({ released: Type.Array(Type.String()) }) },
        },
      },
      async (request) => services.deregisterService(store, principalOf(request), request.params.id),
    );

    api.post(
      '/services/:id/claims',
      {
        schema: {
          summary:
            'Claim up to N tasks (hub by weight, then priority, then task weight); optionally wait for work',
          tags,
          params: ServiceParams,
          body: S.Body({ count: Type.Integer({ minimum: 1, maximum: 1000 }), ...claimOptions }),
          response: { 200: Type.Array(Claim) },
        },
      },
      async (request) =>
        longPollClaim(
          store,
          principalOf(request),
          request.params.id,
          request.body,
          timings,
          request,
          closing,
        ),
    );

    await plain.register(computeManagerRoutes, { store, timings });

    const TaskParams = Type.Object({ id: S.Key });

    api.get(
      '/tasks/:id',
      {
        schema: {
          summary: 'A claimed task: its transformation and the result of the task it extends',
          tags,
          params: TaskParams,
          querystring: LeaseToken,
          response: { 200: Claim },
        },
      },
      async (request) =>
        claims.getClaim(store, principalOf(request), request.params.id, request.query.leaseToken),
    );

    api.post(
      '/tasks/:id/heartbeat',
      {
        config: { writesInMaintenance: true },
        schema: {
          summary: 'Extend one lease; a stale or foreign token gets 409 and changes nothing',
          tags,
          params: TaskParams,
          body: LeaseToken,
          response: {
            200: Type.Object({
              task: Type.String(),
              leaseToken: Type.Integer(),
              leaseExpiresAt: Type.String(),
            }),
          },
        },
      },
      async (request) =>
        leases.extendLease(store, principalOf(request), request.params.id, request.body.leaseToken, timings),
    );

    api.post(
      '/tasks/:id/release',
      {
        config: { writesInMaintenance: true },
        schema: {
          summary: 'Give a task back without penalty',
          tags,
          params: TaskParams,
          body: LeaseToken,
          response: { 200: Type.Object({ task: Type.String(), status: Type.Literal('waiting') }) },
        },
      },
      async (request) =>
        leases.releaseLease(store, principalOf(request), request.params.id, request.body.leaseToken),
    );

    api.put(
      '/tasks/:id/result',
      {
        config: { writesInMaintenance: true },
        schema: {
          summary:
            'Submit a result as a streamed application/octet-stream body (for a failure: the error text)',
          tags,
          params: TaskParams,
          querystring: Type.Object({
            leaseToken: S.LeaseToken,
            outcome: S.ResultOutcome,
          }),
          response: {
            200: Type.Object({
              result: Type.String(),
              status: Type.Union([Type.Literal('complete'), Type.Literal('waiting'), Type.Literal('error')]),
              sha256: Type.String(),
            }),
          },
        },
      },
      async (request) => {
        if (request.headers['content-type'] !== 'application/octet-stream') {
          throw new AthanorError('invalid_argument', 'send the result as an application/octet-stream body');
        }
        // A small body of a known length is read whole: its lease is then checked by the write
        // that records it (no read before), as for the results of an exchange.
        const stream = request.body as Readable;
        const length = Number(request.headers['content-length']);
        const body =
          Number.isInteger(length) && length <= maxBatchedResultBytes
            ? Buffer.concat(await stream.toArray())
            : stream;
        return submitResult(
          store,
          objects,
          principalOf(request),
          {
            taskId: request.params.id,
            leaseToken: request.query.leaseToken,
            outcome: request.query.outcome,
            body,
          },
          options.inlineResultMaxBytes,
        );
      },
    );

    api.get(
      '/results/:id/download',
      {
        schema: {
          summary: "Download a result's bytes (for tasks extending a task)",
          tags,
          params: TaskParams,
          response: { 200: Type.Unknown({ description: 'the result bytes' }) },
        },
      },
      async (request, reply) =>
        sendResultBytes(
          reply,
          store,
          objects,
          await getResult(store, principalOf(request), request.params.id),
        ),
    );
  });
};
