import type { Static } from 'typebox';
import type * as Shape from './api-shapes.js';

// The shapes both APIs answer with, as the public client sees them: each the type of its schema in
// `api-shapes.ts`, so the server's validation, the OpenAPI document and the client agree. They live
// in domain/, not beside the service functions that build them, so that `client/` (the SDK)
// depends on no server-side module.

export type { AttemptOutcome } from './outcomes.js';

export type NetworkView = Readonly<Static<typeof Shape.Network>>;
export type TransformationView = Readonly<Static<typeof Shape.TransformationView>>;
/** A task; `progress` is what the running attempt last reported (null when none). */
export type TaskView = Readonly<Static<typeof Shape.Task>>;
export type ResultView = Readonly<Static<typeof Shape.Result>>;
/** A claimed task as the compute API hands it to a service. */
export type Claim = Readonly<Static<typeof Shape.Claim>>;
/** A running task's last reported progress. */
export type ProgressView = Readonly<NonNullable<Static<typeof Shape.Progress>>>;
/**
 * One claim of a task, from the claim to what ended it. `attempt` numbers a task's claims 1, 2, …
 * in order; the lease's fencing token is never shown to users.
 */
export type AttemptView = Readonly<Static<typeof Shape.Attempt>>;
/** A task's status, attempts, current lease holder and last failure (`POST /v1/tasks/details`). */
export type TaskDetail = Readonly<Static<typeof Shape.TaskDetail>>;
/** One failed attempt with its whole failure text. */
export type FailureView = Readonly<Static<typeof Shape.Failure>>;
/** A transformation's chosen result in a network (`GET /v1/networks/{key}/results`). */
export type NetworkResultView = Readonly<Static<typeof Shape.NetworkResult>>;
