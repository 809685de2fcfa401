import { Type } from 'typebox';
import { networkStates } from './network-state.js';
import { attemptOutcomes, resultOutcomes } from './outcomes.js';
import { taskStatuses, userSettableStatuses } from './task-state.js';

// The shapes both APIs answer with, written once as TypeBox schemas: the server validates and
// documents its responses with them, and `api-views.ts` derives the client's types from them.
// The client imports those types only, so the SDK loads no schema code.

// The vocabularies are the domain's arrays, so a new state or outcome is added in one place.
export const NetworkState = Type.Enum(networkStates);
export const TaskStatus = Type.Enum(taskStatuses);
export const UserTaskStatus = Type.Enum(userSettableStatuses);
export const ResultOutcome = Type.Enum(resultOutcomes);
export const AttemptOutcome = Type.Enum(attemptOutcomes);

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

export const Progress = Type.Union(
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

/** A claimed task as the compute API hands it to a service. */
export const Claim = Type.Object({
  task: Type.String(),
  scope: Type.String(),
  leaseToken: Type.Integer(),
  leaseExpiresAt: Type.Union([Type.String(), Type.Null()]),
  attempt: Type.Integer(),
  transformation: TransformationView,
  extends: Type.Union([
    Type.Object({
      task: Type.String(),
      result: Type.Union([Type.String(), Type.Null()]),
      sha256: Type.Union([Type.String(), Type.Null()]),
    }),
    Type.Null(),
  ]),
});
