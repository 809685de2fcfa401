import type { NetworkState } from './network-state.js';
import type { TaskStatus } from './task-state.js';
import type { AttemptOutcome, ResultOutcome } from './outcomes.js';

// The shapes both APIs answer with, as the public client sees them. They live here, not beside the
// service functions that build them, so that `client/` (the SDK) depends on no server-side module.

export interface NetworkView {
  readonly key: string;
  readonly scope: string;
  readonly name: string;
  readonly state: NetworkState;
  readonly weight: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
  readonly transformationCount?: number;
}

export interface TransformationView {
  readonly key: string;
  readonly scope: string;
  readonly name: string;
  readonly protocol: string;
  readonly inputs: unknown;
  readonly createdAt: string;
}

export interface TaskView {
  readonly id: string;
  readonly scope: string;
  readonly transformation: string;
  readonly extends: string | null;
  readonly status: TaskStatus;
  readonly priority: number;
  readonly attempts: number;
  readonly restarts: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
  /** When the status last changed. */
  readonly statusChangedAt: string;
  /** The reason a user gave with the last status change, if any. */
  readonly reason: string | null;
  readonly lastError: string | null;
}

export interface ResultView {
  readonly id: string;
  readonly task: string;
  readonly scope: string;
  readonly attempt: number;
  readonly outcome: ResultOutcome;
  readonly sha256: string | null;
  readonly sizeBytes: number | null;
  readonly error: string | null;
  readonly computeService: string | null;
  readonly createdAt: string;
}

/** A claimed task as the compute API hands it to a service. */
export interface Claim {
  readonly task: string;
  readonly scope: string;
  readonly leaseToken: number;
  readonly leaseExpiresAt: string | null;
  readonly attempt: number;
  readonly transformation: TransformationView;
  readonly extends: {
    readonly task: string;
    readonly result: string | null;
    readonly sha256: string | null;
  } | null;
}

export type { AttemptOutcome };

/** One claim of a task, from the claim to what ended it; the claim number stands for its lease. */
export interface AttemptView {
  readonly task: string;
  readonly claim: number;
  readonly attempt: number;
  readonly computeIdentity: string;
  readonly computeService: string;
  readonly hostname: string | null;
  readonly claimedAt: string;
  readonly endedAt: string | null;
  readonly outcome: AttemptOutcome | null;
  readonly result: string | null;
  readonly reason: string | null;
}

/** A task's status, attempts, current lease holder and last failure (`POST /v1/tasks/details`). */
export interface TaskDetail {
  readonly status: TaskStatus;
  readonly statusChangedAt: string;
  readonly reason: string | null;
  readonly attempts: AttemptView[];
  readonly leaseHolder: {
    readonly computeIdentity: string;
    readonly computeService: string;
    readonly hostname: string | null;
    readonly claimedAt: string;
    readonly leaseExpiresAt: string | null;
  } | null;
  readonly lastOutcome: AttemptOutcome | null;
  readonly lastErrorHead: string | null;
}

/** One failed attempt with its whole failure text. */
export interface FailureView extends AttemptView {
  readonly errorClass: string | null;
  readonly message: string;
  /** The whole failure text, read from the result's blob. */
  readonly traceback: string;
}

/** A transformation's chosen result in a network (`GET /v1/networks/{key}/results`). */
export interface NetworkResultView {
  readonly transformation: string;
  readonly name: string;
  readonly task: string;
  readonly result: string;
  readonly outcome: ResultOutcome;
  readonly sha256: string | null;
  readonly sizeBytes: number | null;
  readonly createdAt: string;
}
