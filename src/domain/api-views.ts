import type { Static } from 'typebox';
import type { ManagerDecisionAction } from './manager-decision.js';
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

/** Claimable waiting tasks a caller may serve (of the protocols asked), per scope, counted up to `cap`. */
export interface DemandView {
  /** Claimable waiting tasks in all (at most `cap`). */
  readonly waiting: number;
  /** True when the count stopped at `cap`: there are at least that many. */
  readonly capped: boolean;
  readonly cap: number;
  readonly scopes: { scope: string; waiting: number }[];
}

/** A compute service a manager started, as the server has it. */
export interface ManagedServiceView {
  readonly id: string;
  readonly launch: string | null;
  readonly registeredAt: string;
  readonly heartbeatAt: string;
  /** Tasks it holds now. */
  readonly leases: number;
  readonly draining: boolean;
}

/** One service a manager's driver runs (or has queued), as the manager reports it. */
export interface ManagerLaunch {
  readonly launch: string;
  /** `pending`: queued by the scheduler, not running yet. */
  readonly state: 'pending' | 'running';
  readonly startedAt: string;
  /** The driver's own handle: a process id, a Slurm job id, a Kubernetes Job name. */
  readonly handle?: string | undefined;
}

/** What a manager decided in one cycle, and why in words. */
export interface ManagerDecision {
  readonly at: string;
  readonly action: ManagerDecisionAction;
  readonly count: number;
  readonly reason: string;
}

/** The server's answer to a manager's heartbeat: what to do this cycle. */
export interface ManagerInstruction {
  /** `ok`: scale to the demand; `skip`: start nothing (paused); `shutdown`: stop (stopped by an operator). */
  readonly instruction: 'ok' | 'skip' | 'shutdown';
  readonly reason: string;
  readonly demand: DemandView;
  /** Its maximum after the operator's cap. */
  readonly maxServices: number;
  readonly services: ManagedServiceView[];
}

export interface ManagerView {
  readonly id: string;
  readonly identifier: string;
  readonly name: string;
  readonly hostname: string | null;
  readonly driver: string;
  readonly scopes: string[];
  readonly minServices: number;
  readonly maxServices: number;
  readonly state: 'active' | 'stopped' | 'expired';
  readonly paused: boolean;
  readonly cap: number | null;
  readonly stopRequested: boolean;
  readonly registeredAt: string;
  readonly heartbeatAt: string;
  readonly expiresAt: string;
  /** What its driver runs, as it last reported. */
  readonly launches: ManagerLaunch[];
  /** Its latest decisions, newest last. */
  readonly decisions: ManagerDecision[];
}
