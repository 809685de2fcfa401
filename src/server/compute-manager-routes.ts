import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { ComputeTimings } from '../service/compute-services.js';
import * as managers from '../service/managers.js';
import type { Store } from '../store/open-store.js';
import { principalOf } from './auth-hook.js';
import * as S from './schemas.js';
import { managerDecisionActions } from '../domain/manager-decision.js';

export interface ManagerRouteOptions {
  readonly store: Store;
  readonly timings: ComputeTimings;
}

const tags = ['compute managers'];
const Protocols = Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 });

const Demand = Type.Object({
  waiting: Type.Integer({ description: 'claimable waiting tasks, counted up to `cap`' }),
  capped: Type.Boolean({ description: 'true when there are at least `cap`' }),
  cap: Type.Integer(),
  scopes: Type.Array(Type.Object({ scope: Type.String(), waiting: Type.Integer() })),
});

const Launch = Type.Object({
  launch: Type.String({ minLength: 1, maxLength: 200 }),
  state: Type.Union([Type.Literal('pending'), Type.Literal('running')]),
  startedAt: Type.String({ maxLength: 40 }),
  handle: Type.Optional(Type.String({ maxLength: 200 })),
});

const Decision = Type.Object({
  at: Type.String({ maxLength: 40 }),
  action: Type.Enum(managerDecisionActions),
  count: Type.Integer({ minimum: 0 }),
  reason: Type.String({ maxLength: 2000 }),
});

const ManagerView = Type.Object({
  id: Type.String(),
  identifier: Type.String(),
  name: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  driver: Type.String(),
  scopes: Type.Array(Type.String()),
  minServices: Type.Integer(),
  maxServices: Type.Integer(),
  state: Type.String(),
  paused: Type.Boolean(),
  cap: Type.Union([Type.Integer(), Type.Null()]),
  stopRequested: Type.Boolean(),
  registeredAt: Type.String(),
  heartbeatAt: Type.String(),
  expiresAt: Type.String(),
  launches: Type.Array(Launch),
  decisions: Type.Array(Decision),
});

const Params = Type.Object({ id: S.Key });

/**
 * Compute managers on the compute API: registration, heartbeats that answer each cycle's
 * instruction, and the demand figure (also for external autoscalers such as KEDA's metrics-api).
 */
export const computeManagerRoutes: FastifyPluginAsyncTypebox<ManagerRouteOptions> = async (api, options) => {
  const { store, timings } = options;

  api.get(
    '/demand',
    {
      schema: {
        summary:
          'Claimable waiting tasks in the caller’s scopes (of the protocols asked), per scope, for autoscalers',
        tags,
        querystring: Type.Object({
          scope: Type.Optional(Type.Union([S.ScopeText, Type.Array(S.ScopeText, { maxItems: 100 })])),
          protocol: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Protocols])),
        }),
        response: { 200: Demand },
      },
    },
    async (request) => {
      const list = (v: string | string[] | undefined) => (v === undefined ? undefined : [v].flat());
      return managers.demand(store, principalOf(request), {
        scopes: list(request.query.scope),
        protocols: list(request.query.protocol),
      });
    },
  );

  api.post(
    '/managers',
    {
      schema: {
        summary: 'Register a compute manager (the same name takes its registration back)',
        tags,
        body: S.Body({
          name: Type.String({ minLength: 1, maxLength: 200 }),
          hostname: Type.Optional(Type.String({ maxLength: 255 })),
          driver: Type.String({ minLength: 1, maxLength: 40 }),
          scopes: Type.Optional(Type.Array(S.ScopeText, { maxItems: 100 })),
          minServices: Type.Integer({ minimum: 0, maximum: 100_000 }),
          maxServices: Type.Integer({ minimum: 1, maximum: 100_000 }),
        }),
        response: {
          200: Type.Object({ id: Type.String(), registrationTtlMs: Type.Integer(), resumed: Type.Boolean() }),
        },
      },
    },
    async (request) => managers.registerManager(store, principalOf(request), request.body, timings),
  );

  api.post(
    '/managers/:id/heartbeat',
    {
      config: { writesInMaintenance: true },
      schema: {
        summary: "A manager's cycle: report its launches and decisions, get the instruction and demand",
        tags,
        params: Params,
        body: S.Body({
          launches: Type.Array(Launch, { maxItems: 10_000 }),
          decisions: Type.Optional(Type.Array(Decision, { maxItems: 100 })),
          drain: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 10_000 })),
          protocols: Type.Optional(Protocols),
        }),
        response: {
          200: Type.Object({
            instruction: Type.Union([Type.Literal('ok'), Type.Literal('skip'), Type.Literal('shutdown')]),
            reason: Type.String(),
            demand: Demand,
            maxServices: Type.Integer(),
            services: Type.Array(
              Type.Object({
                id: Type.String(),
                launch: Type.Union([Type.String(), Type.Null()]),
                registeredAt: Type.String(),
                heartbeatAt: Type.String(),
                leases: Type.Integer(),
                draining: Type.Boolean(),
              }),
            ),
          }),
        },
      },
    },
    async (request) =>
      managers.managerHeartbeat(store, principalOf(request), request.params.id, request.body, timings),
  );

  api.delete(
    '/managers/:id',
    {
      config: { writesInMaintenance: true },
      schema: {
        summary: 'Deregister a compute manager (its services end by themselves)',
        tags,
        params: Params,
        response: { 200: Type.Object({ id: Type.String(), state: Type.Literal('stopped') }) },
      },
    },
    async (request) => managers.deregisterManager(store, principalOf(request), request.params.id),
  );

  api.get(
    '/managers',
    {
      schema: {
        summary: 'The managers this compute identity registered, with their latest decisions',
        tags,
        response: { 200: Type.Array(ManagerView) },
      },
    },
    async (request) => managers.listOwnManagers(store, principalOf(request)),
  );

  api.get(
    '/managers/:id',
    {
      schema: {
        summary: 'One manager of this compute identity: its launches and why it decided what it did',
        tags,
        params: Params,
        response: { 200: ManagerView },
      },
    },
    async (request) => managers.getOwnManager(store, principalOf(request), request.params.id),
  );
};
