import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import type { Authenticator } from '../service/authenticator.js';
import * as attempts from '../service/attempts.js';
import * as networks from '../service/networks.js';
import * as tasks from '../service/tasks.js';
import type { Store } from '../store/open-store.js';
import { principalOf, requireBearer } from './auth-hook.js';
import { principalView } from '../auth/principal.js';
import * as S from './schemas.js';
import { sendResultBytes } from './result-bytes.js';
import { tokenRoute } from './token-route.js';

export interface RouteOptions {
  readonly store: Store;
  readonly authenticator: Authenticator;
  readonly tokenRateLimit: number;
  /** Streams a result's bytes to the reply (set when an object store is configured). */
  readonly openResult?: (sha256: string) => Promise<Readable>;
  /** Per-network submission limits; default `defaultNetworkLimits`. */
  readonly networkLimits?: networks.NetworkLimits;
}

const ok = { 200: Type.Unknown() };

export const userRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, options) => {
  const { store } = options;
  await app.register(tokenRoute('user'), {
    store,
    authenticator: options.authenticator,
    tokenRateLimit: options.tokenRateLimit,
  });

  await app.register(async (plain) => {
    const api = plain.withTypeProvider<TypeBoxTypeProvider>();
    requireBearer(plain, options.authenticator, 'user');
    const tags = ['user'];

    api.get(
      '/whoami',
      { schema: { summary: 'The calling identity and its scopes', tags, response: ok } },
      async (request) => principalView(principalOf(request)),
    );

    api.post(
      '/networks',
      {
        schema: {
          summary: 'Submit a network (idempotent: the same network gives the same key)',
          tags,
          body: S.NetworkSubmission,
          response: {
            200: Type.Object({
              key: Type.String(),
              created: Type.Boolean(),
              transformations: Type.Array(Type.String()),
            }),
          },
        },
      },
      async (request) =>
        networks.submitNetwork(store, principalOf(request), request.body, options.networkLimits),
    );

    api.get(
      '/networks',
      {
        schema: {
          summary: 'List networks in your scopes (the scope query may hold wildcards)',
          tags,
          querystring: Type.Intersect([
            S.Page,
            Type.Object({
              scope: Type.Optional(S.ScopeText),
              state: Type.Optional(S.NetworkState),
              name: Type.Optional(Type.String()),
            }),
          ]),
          response: { 200: Type.Array(S.Network) },
        },
      },
      async (request) => networks.listNetworks(store, principalOf(request), request.query),
    );

    const NetworkParams = Type.Object({ key: S.Key });

    api.get(
      '/networks/:key',
      { schema: { summary: 'One network', tags, params: NetworkParams, response: { 200: S.Network } } },
      async (request) => networks.getNetwork(store, principalOf(request), request.params.key),
    );

    api.get(
      '/networks/:key/transformations',
      {
        schema: {
          summary: "A network's transformations",
          tags,
          params: NetworkParams,
          querystring: S.Page,
          response: { 200: Type.Array(S.TransformationView) },
        },
      },
      async (request) =>
        networks.listNetworkTransformations(store, principalOf(request), request.params.key, request.query),
    );

    api.get(
      '/networks/:key/tasks',
      {
        schema: {
          summary: "The tasks actioned on a network's hub, with their weights",
          tags,
          params: NetworkParams,
          querystring: S.Page,
          response: { 200: Type.Array(Type.Intersect([S.Task, Type.Object({ weight: Type.Number() })])) },
        },
      },
      async (request) =>
        tasks.listActionedTasks(store, principalOf(request), request.params.key, request.query),
    );

    api.get(
      '/networks/:key/status',
      {
        schema: {
          summary: "Task counts by status over a network's transformations",
          tags,
          params: NetworkParams,
          response: { 200: S.StatusCounts },
        },
      },
      async (request) => networks.networkStatus(store, principalOf(request), request.params.key),
    );

    api.put(
      '/networks/:key/weight',
      {
        schema: {
          summary: "Set a network hub's weight (0 pauses it)",
          tags,
          params: NetworkParams,
          body: S.Body({ weight: S.Weight }),
          response: { 200: S.Network },
        },
      },
      async (request) =>
        networks.setHubWeight(store, principalOf(request), request.params.key, request.body.weight),
    );

    api.post(
      '/networks/state',
      {
        schema: {
          summary: 'Set the state of many networks; only active networks are claimable',
          tags,
          body: S.Body({ networks: S.KeyList, state: S.NetworkState }),
          response: {
            200: Type.Array(
              Type.Object({ key: Type.String(), state: Type.Union([S.NetworkState, Type.Null()]) }),
            ),
          },
        },
      },
      async (request) =>
        networks.setNetworkStates(store, principalOf(request), request.body.networks, request.body.state),
    );

    api.post(
      '/networks/:key/actions',
      {
        schema: {
          summary: "Action tasks on a network's hub with a weight",
          tags,
          params: NetworkParams,
          body: S.Body({ tasks: S.KeyList, weight: Type.Optional(S.Weight) }),
          response: { 200: Type.Array(S.bulkAnswer(Type.Boolean())) },
        },
      },
      async (request) =>
        tasks.actionTasks(
          store,
          principalOf(request),
          request.params.key,
          request.body.tasks,
          request.body.weight,
        ),
    );

    api.post(
      '/networks/:key/cancellations',
      {
        schema: {
          summary: "Take tasks off a network's hub",
          tags,
          params: NetworkParams,
          body: S.Body({ tasks: S.KeyList }),
          response: { 200: Type.Array(S.bulkAnswer(Type.Boolean())) },
        },
      },
      async (request) =>
        tasks.cancelTasks(store, principalOf(request), request.params.key, request.body.tasks),
    );

    const Policy = S.Body({
      pattern: Type.String({ minLength: 1, maxLength: 1000 }),
      maxRetries: Type.Integer({ minimum: 0, maximum: 1000 }),
    });

    api.get(
      '/networks/:key/restart-policies',
      {
        schema: {
          summary: "A network's restart policies",
          tags,
          params: NetworkParams,
          response: { 200: Type.Array(Policy) },
        },
      },
      async (request) => networks.listRestartPolicies(store, principalOf(request), request.params.key),
    );

    api.post(
      '/networks/:key/restart-policies',
      {
        schema: {
          summary: 'Add restart policies: failures whose error text matches the pattern are retried',
          tags,
          params: NetworkParams,
          body: S.Body({ policies: Type.Array(Policy, { minItems: 1, maxItems: 100 }) }),
          response: { 200: Type.Array(Policy) },
        },
      },
      async (request) =>
        networks.addRestartPolicies(store, principalOf(request), request.params.key, request.body.policies),
    );

    api.post(
      '/networks/:key/restart-policies/removals',
      {
        schema: {
          summary: 'Remove restart policies by pattern',
          tags,
          params: NetworkParams,
          body: S.Body({ patterns: Type.Array(Type.String(), { minItems: 1, maxItems: 100 }) }),
          response: { 200: Type.Array(Policy) },
        },
      },
      async (request) =>
        networks.removeRestartPolicies(
          store,
          principalOf(request),
          request.params.key,
          request.body.patterns,
        ),
    );

    api.get(
      '/transformations',
      {
        schema: {
          summary: 'List transformations in your scopes',
          tags,
          querystring: Type.Intersect([
            S.Page,
            Type.Object({
              scope: Type.Optional(S.ScopeText),
              name: Type.Optional(Type.String()),
              protocol: Type.Optional(Type.String()),
            }),
          ]),
          response: { 200: Type.Array(S.TransformationView) },
        },
      },
      async (request) => networks.listTransformations(store, principalOf(request), request.query),
    );

    api.get(
      '/transformations/:key',
      {
        schema: {
          summary: 'One transformation',
          tags,
          params: NetworkParams,
          response: { 200: S.TransformationView },
        },
      },
      async (request) => networks.getTransformation(store, principalOf(request), request.params.key),
    );

    api.post(
      '/transformations/:key/tasks',
      {
        schema: {
          summary: 'Create tasks for a transformation (optionally extending a task of it)',
          tags,
          params: NetworkParams,
          body: S.Body({
            count: Type.Optional(Type.Integer({ minimum: 1, maximum: tasks.maxTasksPerCreate })),
            extends: Type.Optional(S.Key),
            priority: Type.Optional(S.Priority),
          }),
          response: { 200: Type.Array(S.Task) },
        },
      },
      async (request) => tasks.createTasks(store, principalOf(request), request.params.key, request.body),
    );

    api.get(
      '/tasks',
      {
        schema: {
          summary: 'List tasks in your scopes',
          tags,
          querystring: Type.Intersect([
            S.Page,
            Type.Object({
              scope: Type.Optional(S.ScopeText),
              status: Type.Optional(S.TaskStatus),
              transformation: Type.Optional(S.Key),
              network: Type.Optional(S.Key),
            }),
          ]),
          response: { 200: Type.Array(S.Task) },
        },
      },
      async (request) => tasks.listTasks(store, principalOf(request), request.query),
    );

    const TaskParams = Type.Object({ id: S.Key });

    api.get(
      '/tasks/:id',
      { schema: { summary: 'One task', tags, params: TaskParams, response: { 200: S.Task } } },
      async (request) => tasks.getTask(store, principalOf(request), request.params.id),
    );

    api.post(
      '/tasks/status',
      {
        schema: {
          summary:
            'Set the status of many tasks (waiting, invalid, deleted; the last two cascade to extending tasks)',
          tags,
          body: S.Body({
            tasks: S.KeyList,
            status: S.UserTaskStatus,
            reason: Type.Optional(Type.String({ maxLength: tasks.maxReasonLength })),
          }),
          response: {
            200: Type.Object({
              tasks: Type.Array(S.bulkAnswer(S.TaskStatus)),
              cascaded: Type.Array(Type.String()),
            }),
          },
        },
      },
      async (request) =>
        tasks.setTaskStatuses(
          store,
          principalOf(request),
          request.body.tasks,
          request.body.status,
          request.body.reason,
        ),
    );

    api.post(
      '/tasks/details',
      {
        schema: {
          summary: 'Status, attempts, lease holder, last outcome and last error head of many tasks',
          tags,
          body: Type.Object({ tasks: S.KeyList }),
          response: {
            200: Type.Array(
              Type.Object({
                task: Type.String(),
                result: Type.Union([S.TaskDetail, Type.Null()]),
                error: Type.Optional(Type.String()),
              }),
            ),
          },
        },
      },
      async (request) => attempts.taskDetails(store, principalOf(request), request.body.tasks),
    );

    api.get(
      '/tasks/:id/attempts',
      {
        schema: {
          summary: "A task's attempts, one per claim, oldest first",
          tags,
          params: TaskParams,
          response: { 200: Type.Array(S.Attempt) },
        },
      },
      async (request) => attempts.listTaskAttempts(store, principalOf(request), request.params.id),
    );

    const FailurePage = Type.Object({
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: attempts.maxFailuresPerPage, default: 100 })),
      after: Type.Optional(
        Type.String({ description: "'<task>:<claim>' of the previous page's last failure" }),
      ),
    });

    api.get(
      '/networks/:key/failures',
      {
        schema: {
          summary: "Failed attempts of a network's tasks with error class, message and full text, paged",
          tags,
          params: NetworkParams,
          querystring: FailurePage,
          response: { 200: Type.Array(S.Failure) },
        },
      },
      async (request) =>
        attempts.listFailures(store, principalOf(request), options.openResult, {
          ...request.query,
          network: request.params.key,
        }),
    );

    api.get(
      '/networks/:key/results',
      {
        schema: {
          summary:
            "A network's results, one per transformation (its newest ok result, else its newest failure), paged by transformation key",
          tags,
          params: NetworkParams,
          querystring: Type.Object({
            outcome: Type.Optional(S.ResultOutcome),
            limit: Type.Optional(
              Type.Integer({ minimum: 1, maximum: attempts.maxNetworkResultsPerPage, default: 1000 }),
            ),
            after: Type.Optional(
              Type.String({ description: 'the last transformation key of the previous page' }),
            ),
          }),
          response: { 200: Type.Array(S.NetworkResult) },
        },
      },
      async (request) =>
        attempts.listNetworkResults(store, principalOf(request), request.params.key, request.query),
    );

    api.get(
      '/failures',
      {
        schema: {
          summary: 'Failed attempts in your scopes (the scope query may hold wildcards), paged',
          tags,
          querystring: Type.Intersect([FailurePage, Type.Object({ scope: Type.Optional(S.ScopeText) })]),
          response: { 200: Type.Array(S.Failure) },
        },
      },
      async (request) =>
        attempts.listFailures(store, principalOf(request), options.openResult, request.query),
    );

    api.post(
      '/tasks/priority',
      {
        schema: {
          summary: 'Set the priority of many tasks',
          tags,
          body: S.Body({ tasks: S.KeyList, priority: S.Priority }),
          response: { 200: Type.Array(S.bulkAnswer(Type.Integer())) },
        },
      },
      async (request) =>
        tasks.setTaskPriorities(store, principalOf(request), request.body.tasks, request.body.priority),
    );

    api.get(
      '/tasks/:id/results',
      {
        schema: {
          summary: "A task's results, one per attempt",
          tags,
          params: TaskParams,
          response: { 200: Type.Array(S.Result) },
        },
      },
      async (request) => tasks.listTaskResults(store, principalOf(request), request.params.id),
    );

    api.get(
      '/results/:id',
      { schema: { summary: 'One result', tags, params: TaskParams, response: { 200: S.Result } } },
      async (request) => tasks.getResult(store, principalOf(request), request.params.id),
    );

    api.get(
      '/results/:id/download',
      {
        schema: {
          summary: "Download a result's bytes as a stream",
          tags,
          params: TaskParams,
          response: { 200: Type.Unknown({ description: 'the result bytes (application/octet-stream)' }) },
        },
      },
      async (request, reply) =>
        sendResultBytes(
          reply,
          await tasks.getResult(store, principalOf(request), request.params.id),
          options.openResult,
        ),
    );

    api.get(
      '/status',
      {
        schema: {
          summary: 'Task counts per scope and status (the scope query may hold wildcards)',
          tags,
          querystring: Type.Object({ scope: Type.Optional(S.ScopeText) }),
          response: { 200: Type.Record(Type.String(), S.StatusCounts) },
        },
      },
      async (request) => networks.scopeStatus(store, principalOf(request), request.query.scope),
    );
  });
};
