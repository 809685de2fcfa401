import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import * as attempts from '../service/attempts.js';
import * as networks from '../service/networks.js';
import { readResultBytes } from '../service/result-body.js';
import * as tasks from '../service/tasks.js';
import { principalOf, requireBearer } from './auth-hook.js';
import { principalView } from '../auth/principal.js';
import { userRouteSchemas as R } from './user-route-schemas.js';
import { sendResultBytes } from './result-bytes.js';
import type { ResultRef } from '../service/result-body.js';
import type { RouteOptions } from './route-options.js';
import { tokenRoute } from './token-route.js';

export type { RouteOptions } from './route-options.js';

export const userRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, options) => {
  const { store, objects } = options;
  const openResult = objects && ((result: ResultRef) => readResultBytes(store, objects, result));
  await app.register(tokenRoute('user'), {
    store,
    authenticator: options.authenticator,
    tokenRateLimit: options.tokenRateLimit,
  });

  await app.register(async (plain) => {
    const api = plain.withTypeProvider<TypeBoxTypeProvider>();
    requireBearer(plain, options.authenticator, 'user');

    api.get('/whoami', { schema: R['GET /whoami'] }, async (request) => principalView(principalOf(request)));

    api.post(
      '/networks',
      {
        schema: R['POST /networks'],
      },
      async (request) =>
        networks.submitNetwork(store, principalOf(request), request.body, options.networkLimits),
    );

    api.get(
      '/networks',
      {
        schema: R['GET /networks'],
      },
      async (request) => networks.listNetworks(store, principalOf(request), request.query),
    );

    api.get('/networks/:key', { schema: R['GET /networks/:key'] }, async (request) =>
      networks.getNetwork(store, principalOf(request), request.params.key),
    );

    api.get(
      '/networks/:key/transformations',
      {
        schema: R['GET /networks/:key/transformations'],
      },
      async (request) =>
        networks.listNetworkTransformations(store, principalOf(request), request.params.key, request.query),
    );

    api.get(
      '/networks/:key/tasks',
      {
        schema: R['GET /networks/:key/tasks'],
      },
      async (request) =>
        tasks.listActionedTasks(store, principalOf(request), request.params.key, request.query),
    );

    api.get(
      '/networks/:key/status',
      {
        schema: R['GET /networks/:key/status'],
      },
      async (request) => networks.networkStatus(store, principalOf(request), request.params.key),
    );

    api.put(
      '/networks/:key/weight',
      {
        schema: R['PUT /networks/:key/weight'],
      },
      async (request) =>
        networks.setHubWeight(store, principalOf(request), request.params.key, request.body.weight),
    );

    api.post(
      '/networks/state',
      {
        schema: R['POST /networks/state'],
      },
      async (request) =>
        networks.setNetworkStates(store, principalOf(request), request.body.networks, request.body.state),
    );

    api.post(
      '/networks/:key/actions',
      {
        schema: R['POST /networks/:key/actions'],
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
        schema: R['POST /networks/:key/cancellations'],
      },
      async (request) =>
        tasks.cancelTasks(store, principalOf(request), request.params.key, request.body.tasks),
    );

    api.get(
      '/networks/:key/restart-policies',
      {
        schema: R['GET /networks/:key/restart-policies'],
      },
      async (request) => networks.listRestartPolicies(store, principalOf(request), request.params.key),
    );

    api.post(
      '/networks/:key/restart-policies',
      {
        schema: R['POST /networks/:key/restart-policies'],
      },
      async (request) =>
        networks.addRestartPolicies(store, principalOf(request), request.params.key, request.body.policies),
    );

    api.post(
      '/networks/:key/restart-policies/removals',
      {
        schema: R['POST /networks/:key/restart-policies/removals'],
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
        schema: R['GET /transformations'],
      },
      async (request) => networks.listTransformations(store, principalOf(request), request.query),
    );

    api.get(
      '/transformations/:key',
      {
        schema: R['GET /transformations/:key'],
      },
      async (request) => networks.getTransformation(store, principalOf(request), request.params.key),
    );

    api.post(
      '/transformations/:key/tasks',
      {
        schema: R['POST /transformations/:key/tasks'],
      },
      async (request) => tasks.createTasks(store, principalOf(request), request.params.key, request.body),
    );

    api.get(
      '/tasks',
      {
        schema: R['GET /tasks'],
      },
      async (request) => tasks.listTasks(store, principalOf(request), request.query),
    );

    api.get('/tasks/:id', { schema: R['GET /tasks/:id'] }, async (request) =>
      tasks.getTask(store, principalOf(request), request.params.id),
    );

    api.post(
      '/tasks/status',
      {
        schema: R['POST /tasks/status'],
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
        schema: R['POST /tasks/details'],
      },
      async (request) => attempts.taskDetails(store, principalOf(request), request.body.tasks),
    );

    api.get(
      '/tasks/:id/attempts',
      {
        schema: R['GET /tasks/:id/attempts'],
      },
      async (request) => attempts.listTaskAttempts(store, principalOf(request), request.params.id),
    );

    api.get(
      '/networks/:key/failures',
      {
        schema: R['GET /networks/:key/failures'],
      },
      async (request) =>
        attempts.listFailures(store, principalOf(request), openResult, {
          ...request.query,
          network: request.params.key,
        }),
    );

    api.get(
      '/networks/:key/results',
      {
        schema: R['GET /networks/:key/results'],
      },
      async (request) =>
        attempts.listNetworkResults(store, principalOf(request), request.params.key, request.query),
    );

    api.get(
      '/failures',
      {
        schema: R['GET /failures'],
      },
      async (request) => attempts.listFailures(store, principalOf(request), openResult, request.query),
    );

    api.post(
      '/tasks/priority',
      {
        schema: R['POST /tasks/priority'],
      },
      async (request) =>
        tasks.setTaskPriorities(store, principalOf(request), request.body.tasks, request.body.priority),
    );

    api.get(
      '/tasks/:id/results',
      {
        schema: R['GET /tasks/:id/results'],
      },
      async (request) => tasks.listTaskResults(store, principalOf(request), request.params.id),
    );

    api.get('/results/:id', { schema: R['GET /results/:id'] }, async (request) =>
      tasks.getResult(store, principalOf(request), request.params.id),
    );

    api.get(
      '/results/:id/download',
      {
        schema: R['GET /results/:id/download'],
      },
      async (request, reply) =>
        sendResultBytes(
          reply,
          store,
          objects,
          await tasks.getResult(store, principalOf(request), request.params.id),
          { presignSeconds: options.presignDownloadsSeconds },
        ),
    );

    api.get(
      '/status',
      {
        schema: R['GET /status'],
      },
      async (request) => networks.scopeStatus(store, principalOf(request), request.query.scope),
    );
  });
};
