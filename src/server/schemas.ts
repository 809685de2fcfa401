import type { TProperties } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { maxScopeLength } from '../domain/scope.js';

import { NetworkState } from '../domain/api-shapes.js';

// The response shapes are written once, in domain/api-shapes.ts (the client's types come from them).
export {
  Attempt,
  AttemptOutcome,
  Failure,
  Network,
  NetworkResult,
  NetworkState,
  Progress,
  Result,
  ResultOutcome,
  Task,
  TaskDetail,
  TaskStatus,
  TransformationView,
  UserTaskStatus,
} from '../domain/api-shapes.js';

/** Shared TypeBox schemas of the HTTP APIs. */
export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { $id: 'ErrorBody', description: 'Every error: a stable code and a message that says what to do' },
);

/** The error answers of every documented route, each a reference to the one registered `ErrorBody`. */
export const errorResponses = {
  '4xx': Type.Ref('ErrorBody', { description: 'refused: the code and message say why and what to do' }),
  '5xx': Type.Ref('ErrorBody', { description: 'not done now: maintenance, a dependency down, or internal' }),
} as const;

export const TokenRequest = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
});

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer(),
});

export const ScopeText = Type.String({
  maxLength: maxScopeLength,
  description: 'org-campaign-project; each part a name or *, and after a * only *',
});
/** The longest key or id in a path or body; the router's parameter limit is the same. */
export const maxKeyLength = 200;

/**
 * A request body object: a field it does not name is refused (400), because a misspelt field
 * would otherwise be silently ignored.
 */
export function Body<T extends TProperties>(properties: T) {
  return Type.Object(properties, { additionalProperties: false });
}

export const Key = Type.String({ minLength: 1, maxLength: maxKeyLength });
export const KeyList = Type.Array(Key, { minItems: 1, maxItems: 10_000 });
/** A lease token a compute service sends back: the column is a 32-bit integer, so larger never matches. */
export const LeaseToken = Type.Integer({ minimum: 0, maximum: 2_147_483_647 });
export const Weight = Type.Number({ minimum: 0, maximum: 1 });
export const Priority = Type.Integer({ minimum: 1, maximum: 1_000_000, description: '1 is the highest' });

export const Page = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
  after: Type.Optional(
    Type.String({ description: 'return items after this key (the last key of the previous page)' }),
  ),
});

export const Transformation = Body({
  name: Type.String({ minLength: 1, maxLength: 500 }),
  protocol: Type.String({ minLength: 1, maxLength: 200 }),
  inputs: Type.Unknown({ description: 'any JSON' }),
});

export const NetworkSubmission = Body({
  scope: ScopeText,
  name: Type.String({ minLength: 1, maxLength: 500 }),
  // The configured limit (ATHANOR_MAX_NETWORK_TRANSFORMATIONS) is checked after; this is the ceiling.
  transformations: Type.Array(Transformation, { minItems: 1, maxItems: 1_000_000 }),
  state: Type.Optional(NetworkState),
});

/** One item's answer in a bulk request; `result: null` means not found in your scopes. */
export function bulkAnswer<T extends Parameters<typeof Type.Union>[0][number]>(result: T) {
  return Type.Object({
    task: Type.String(),
    result: Type.Union([result, Type.Null()]),
    error: Type.Optional(Type.String()),
  });
}

export const StatusCounts = Type.Record(Type.String(), Type.Integer());
