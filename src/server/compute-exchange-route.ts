import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { AthanorError } from '../domain/errors.js';
import type { ReportedResult } from '../service/exchange.js';
import { exchange, maxBatchedResultBytes } from '../service/exchange.js';
import { principalOf, requireBearer } from './auth-hook.js';
import type { ComputeRouteOptions } from './compute-routes.js';
import { Claim, claimOptions } from './compute-routes.js';
import { longPollClaim } from './long-poll-claim.js';
import * as S from './schemas.js';

export const maxBatchedResults = 1000;

const ReportedResultBody = S.Body({
  task: S.Key,
  leaseToken: S.LeaseToken,
  outcome: Type.Union([Type.Literal('ok'), Type.Literal('failed')]),
  text: Type.Optional(
    Type.String({ maxLength: maxBatchedResultBytes, description: 'the result bytes as UTF-8 text' }),
  ),
  base64: Type.Optional(
    Type.String({
      maxLength: Math.ceil(maxBatchedResultBytes / 3) * 4,
      pattern: '^[A-Za-z0-9+/]*={0,2}$',
      description: 'the result bytes, base64 encoded (instead of text)',
    }),
  ),
});

const ResultAnswer = Type.Object({
  task: Type.String(),
  leaseToken: Type.Integer(),
  result: Type.Optional(
    Type.Object({
      result: Type.String(),
      status: Type.Union([Type.Literal('complete'), Type.Literal('waiting'), Type.Literal('error')]),
      sha256: Type.String(),
    }),
  ),
  error: Type.Optional(Type.Object({ code: Type.String(), status: Type.Integer(), message: Type.String() })),
});

function resultBytes(
  body: { text?: string | undefined; base64?: string | undefined },
  index: number,
): Buffer {
  if (body.text !== undefined && body.base64 !== undefined) {
    throw new AthanorError(
      'validation_failed',
      `body/results/${index} has both text and base64: send the result bytes one way`,
    );
  }
  const bytes = body.base64 !== undefined ? Buffer.from(body.base64, 'base64') : Buffer.from(body.text ?? '');
  if (bytes.length > maxBatchedResultBytes) {
    throw new AthanorError(
      'validation_failed',
      `body/results/${index} holds ${bytes.length} bytes, more than ${maxBatchedResultBytes}: stream it to PUT /compute/v1/tasks/{id}/result`,
    );
  }
  return bytes;
}

/**
 * `POST /compute/v1/services/{id}/exchange`: reports many small results and claims the next
 * tasks in one request.
 */
export const computeExchangeRoute: FastifyPluginAsyncTypebox<ComputeRouteOptions> = async (app, options) => {
  const { store, objects, timings, inlineResultMaxBytes } = options;
  const closing = options.closing ?? new AbortController().signal;
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  requireBearer(app, options.authenticator, 'compute');

  api.post(
    '/services/:id/exchange',
    {
      schema: {
        summary: 'Report small results and claim the next tasks in one request',
        description:
          'Every result carries its lease token and is answered on its own: a stale or foreign lease ' +
          'gets `stale_lease` (409), a task outside your scopes `not_found` (404), and the other results ' +
          'land; a result sent again under the lease that already recorded one gets the recorded answer when its ' +
          'outcome and bytes are the same, else `result_conflict` (409) naming the recorded sha256. ' +
          `Each result holds at most ${maxBatchedResultBytes} bytes (as text or base64); stream larger ones ` +
          'to PUT /compute/v1/tasks/{id}/result. Then, with `claim`, up to `claim.count` tasks are claimed ' +
          'as by POST /compute/v1/services/{id}/claims, in the same transaction as the results.',
        tags: ['compute'],
        params: Type.Object({ id: S.Key }),
        body: S.Body({
          results: Type.Optional(Type.Array(ReportedResultBody, { maxItems: maxBatchedResults })),
          claim: Type.Optional(
            S.Body({ count: Type.Integer({ minimum: 0, maximum: 1000 }), ...claimOptions }),
          ),
        }),
        response: {
          200: Type.Object({
            results: Type.Array(ResultAnswer, { description: 'one answer per reported result, in order' }),
            claims: Type.Array(Claim),
          }),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const reported: ReportedResult[] = (request.body.results ?? []).map((r, i) => ({
        taskId: r.task,
        leaseToken: r.leaseToken,
        outcome: r.outcome,
        body: resultBytes(r, i),
      }));
      const claim = request.body.claim;
      const { outcomes, claims } = await exchange(
        store,
        objects,
        principal,
        request.params.id,
        { results: reported, claim },
        { timings, inlineMaxBytes: inlineResultMaxBytes },
      );
      const results = outcomes.map((outcome, i) => {
        const lease = { task: reported[i]!.taskId, leaseToken: reported[i]!.leaseToken };
        return 'landed' in outcome
          ? { ...lease, result: outcome.landed }
          : {
              ...lease,
              error: {
                code: outcome.refused.code,
                status: outcome.refused.status,
                message: outcome.refused.message,
              },
            };
      });
      // Nothing to claim yet: wait for work as the claims route does, after the results landed.
      if (!claim?.waitMs || claims.length > 0 || claim.count === 0) return { results, claims };
      return {
        results,
        claims: await longPollClaim(store, principal, request.params.id, claim, timings, request, closing),
      };
    },
  );
};
