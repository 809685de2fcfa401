import type { TProperties } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { networkStates } from '../domain/network-state.js';
import { attemptOutcomes, resultOutcomes } from '../domain/outcomes.js';
import { maxScopeLength } from '../domain/scope.js';
import { taskStatuses, userSettableStatuses } from '../domain/task-state.js';

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

// The vocabularies are the domain's arrays, so a new state or outcome is added in one place.
export const NetworkState = Type.Enum(networkStates);
export const TaskStatus = Type.Enum(taskStatuses);
export const UserTaskStatus = Type.Enum(userSettableStatuses);
export const ResultOutcome = Type.Enum(resultOutcomes);
export const AttemptOutcome = Type.Enum(attemptOutcomes);

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

export const Network = Type.Object({
  key: Type.String(),
  scope: Type.String(),
  name: Type.String(),
  state: NetworkState,
  weight: Type.Number(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  updatedAt: Type.String(),
  transformationCount: Type.Optional(Type.Integer()),
});

export const TransformationView = Type.Object({
  key: Type.String(),
  scope: Type.String(),
  name: Type.String(),
  protocol: Type.String(),
  inputs: Type.Unknown(),
  createdAt: Type.String(),
});

const Progress = Type.Union(
  [
    Type.Object({
      fraction: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]),
      message: Type.Union([Type.String(), Type.Null()]),
      at: Type.String(),
    }),
    Type.Null(),
  ],
  { description: "a running task's last reported progress" },
);

export const Task = Type.Object({
  id: Type.String(),
  scope: Type.String(),
  transformation: Type.String(),
  extends: Type.Union([Type.String(), Type.Null()]),
  status: TaskStatus,
  priority: Type.Integer(),
  attempts: Type.Integer(),
  restarts: Type.Integer(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  updatedAt: Type.String(),
  statusChangedAt: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  progress: Progress,
});

export const Result = Type.Object({
  id: Type.String(),
  task: Type.String(),
  scope: Type.String(),
  attempt: Type.Integer(),
  outcome: ResultOutcome,
  sha256: Type.Union([Type.String(), Type.Null()]),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  computeService: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const Attempt = Type.Object({
  task: Type.String(),
  attempt: Type.Integer({ description: "the attempt's number among the task's claims: 1, 2, … in order" }),
  computeIdentity: Type.String(),
  computeService: Type.String(),
  hostname: NullableString,
  claimedAt: Type.String(),
  endedAt: Type.Union([Type.String({ description: 'null while the attempt runs' }), Type.Null()]),
  outcome: Type.Union([AttemptOutcome, Type.Null()]),
  result: NullableString,
  reason: NullableString,
  logSizeBytes: Type.Union([Type.Integer({ description: 'null until a log was uploaded' }), Type.Null()]),
});

export const TaskDetail = Type.Object({
  status: TaskStatus,
  statusChangedAt: Type.String(),
  reason: NullableString,
  attempts: Type.Array(Attempt),
  leaseHolder: Type.Union([
    Type.Object({
      computeIdentity: Type.String(),
      computeService: Type.String(),
      hostname: NullableString,
      claimedAt: Type.String(),
      leaseExpiresAt: NullableString,
    }),
    Type.Null(),
  ]),
  lastOutcome: Type.Union([AttemptOutcome, Type.Null()]),
  lastErrorHead: NullableString,
  progress: Progress,
});

export const Failure = Type.Intersect([
  Attempt,
  Type.Object({
    errorClass: NullableString,
    message: Type.String(),
    traceback: Type.String({ description: 'the whole failure text' }),
  }),
]);

export const NetworkResult = Type.Object({
  transformation: Type.String(),
  name: Type.String(),
  task: Type.String(),
  result: Type.String(),
  outcome: ResultOutcome,
  sha256: NullableString,
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.String(),
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
