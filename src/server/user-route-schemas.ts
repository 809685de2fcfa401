import { Type } from '@fastify/type-provider-typebox';
import * as attempts from '../service/attempts.js';
import * as tasks from '../service/tasks.js';
import * as S from './schemas.js';

// The request and response schemas of the user API, one per route (`METHOD /path` under /v1).

const tags = ['user'];
const ok = { 200: Type.Unknown() };
const NetworkParams = Type.Object({ key: S.Key });
const TaskParams = Type.Object({ id: S.Key });
const Policy = S.Body({
  pattern: Type.String({ minLength: 1, maxLength: 1000 }),
  maxRetries: Type.Integer({ minimum: 0, maximum: 1000 }),
});
const FailurePage = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: attempts.maxFailuresPerPage, default: 100 })),
  after: Type.Optional(Type.String({ description: "'<task>:<claim>' of the previous page's last failure" })),
});

export const userRouteSchemas = {
  'GET /whoami': { summary: 'The calling identity and its scopes', tags, response: ok },
  'POST /networks': {
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
  'GET /networks': {
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
  'GET /networks/:key': { summary: 'One network', tags, params: NetworkParams, response: { 200: S.Network } },
  'GET /networks/:key/transformations': {
    summary: "A network's transformations",
    tags,
    params: NetworkParams,
    querystring: S.Page,
    response: { 200: Type.Array(S.TransformationView) },
  },
  'GET /networks/:key/tasks': {
    summary: "The tasks actioned on a network's hub, with their weights",
    tags,
    params: NetworkParams,
    querystring: S.Page,
    response: { 200: Type.Array(Type.Intersect([S.Task, Type.Object({ weight: Type.Number() })])) },
  },
  'GET /networks/:key/status': {
    summary: "Task counts by status over a network's transformations",
    tags,
    params: NetworkParams,
    response: { 200: S.StatusCounts },
  },
  'PUT /networks/:key/weight': {
    summary: "Set a network hub's weight (0 pauses it)",
    tags,
    params: NetworkParams,
    body: S.Body({ weight: S.Weight }),
    response: { 200: S.Network },
  },
  'POST /networks/state': {
    summary: 'Set the state of many networks; only active networks are claimable',
    tags,
    body: S.Body({ networks: S.KeyList, state: S.NetworkState }),
    response: {
      200: Type.Array(Type.Object({ key: Type.String(), state: Type.Union([S.NetworkState, Type.Null()]) })),
    },
  },
  'POST /networks/:key/actions': {
    summary: "Action tasks on a network's hub with a weight",
    tags,
    params: NetworkParams,
    body: S.Body({ tasks: S.KeyList, weight: Type.Optional(S.Weight) }),
    response: { 200: Type.Array(S.bulkAnswer(Type.Boolean())) },
  },
  'POST /networks/:key/cancellations': {
    summary: "Take tasks off a network's hub",
    tags,
    params: NetworkParams,
    body: S.Body({ tasks: S.KeyList }),
    response: { 200: Type.Array(S.bulkAnswer(Type.Boolean())) },
  },
  'GET /networks/:key/restart-policies': {
    summary: "A network's restart policies",
    tags,
    params: NetworkParams,
    response: { 200: Type.Array(Policy) },
  },
  'POST /networks/:key/restart-policies': {
    summary: 'Add restart policies: failures whose error text matches the pattern are retried',
    tags,
    params: NetworkParams,
    body: S.Body({ policies: Type.Array(Policy, { minItems: 1, maxItems: 100 }) }),
    response: { 200: Type.Array(Policy) },
  },
  'POST /networks/:key/restart-policies/removals': {
    summary: 'Remove restart policies by pattern',
    tags,
    params: NetworkParams,
    body: S.Body({ patterns: Type.Array(Type.String(), { minItems: 1, maxItems: 100 }) }),
    response: { 200: Type.Array(Policy) },
  },
  'GET /transformations': {
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
  'GET /transformations/:key': {
    summary: 'One transformation',
    tags,
    params: NetworkParams,
    response: { 200: S.TransformationView },
  },
  'POST /transformations/:key/tasks': {
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
  'GET /tasks': {
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
  'GET /tasks/:id': { summary: 'One task', tags, params: TaskParams, response: { 200: S.Task } },
  'POST /tasks/status': {
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
  'POST /tasks/details': {
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
  'GET /tasks/:id/attempts': {
    summary: "A task's attempts, one per claim, oldest first",
    tags,
    params: TaskParams,
    response: { 200: Type.Array(S.Attempt) },
  },
  'GET /networks/:key/failures': {
    summary: "Failed attempts of a network's tasks with error class, message and full text, paged",
    tags,
    params: NetworkParams,
    querystring: FailurePage,
    response: { 200: Type.Array(S.Failure) },
  },
  'GET /networks/:key/results': {
    summary:
      "A network's results, one per transformation (its newest ok result, else its newest failure), paged by transformation key",
    tags,
    params: NetworkParams,
    querystring: Type.Object({
      outcome: Type.Optional(S.ResultOutcome),
      limit: Type.Optional(
        Type.Integer({ minimum: 1, maximum: attempts.maxNetworkResultsPerPage, default: 1000 }),
      ),
      after: Type.Optional(Type.String({ description: 'the last transformation key of the previous page' })),
    }),
    response: { 200: Type.Array(S.NetworkResult) },
  },
  'GET /failures': {
    summary: 'Failed attempts in your scopes (the scope query may hold wildcards), paged',
    tags,
    querystring: Type.Intersect([FailurePage, Type.Object({ scope: Type.Optional(S.ScopeText) })]),
    response: { 200: Type.Array(S.Failure) },
  },
  'POST /tasks/priority': {
    summary: 'Set the priority of many tasks',
    tags,
    body: S.Body({ tasks: S.KeyList, priority: S.Priority }),
    response: { 200: Type.Array(S.bulkAnswer(Type.Integer())) },
  },
  'GET /tasks/:id/results': {
    summary: "A task's results, one per attempt",
    tags,
    params: TaskParams,
    response: { 200: Type.Array(S.Result) },
  },
  'GET /results/:id': { summary: 'One result', tags, params: TaskParams, response: { 200: S.Result } },
  'GET /results/:id/download': {
    summary: "Download a result's bytes as a stream",
    tags,
    params: TaskParams,
    response: { 200: Type.Unknown({ description: 'the result bytes (application/octet-stream)' }) },
  },
  'GET /status': {
    summary: 'Task counts per scope and status (the scope query may hold wildcards)',
    tags,
    querystring: Type.Object({ scope: Type.Optional(S.ScopeText) }),
    response: { 200: Type.Record(Type.String(), S.StatusCounts) },
  },
};
