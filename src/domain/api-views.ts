import type { NetworkState } from './network-state.js';
import type { TaskStatus } from './task-state.js';
import type { AttemptOutcome, ResultOutcome } from './outcomes.js';
import type { ManagerDecisionAction } from './manager-decision.js';

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
  /** What the running attempt last reported; null when not running or nothing reported. */
  readonly progress: ProgressView | null;
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

/** A running task's last reported progress. */
export interface ProgressView {
  /** Done so far in [0, 1], when the executor reported a fraction. */
  readonly fraction: number | null;
  readonly message: string | null;
  readonly at: string;
}

/**
 * One claim of a task, from the claim to what ended it. `attempt` numbers a task's claims 1, 2, …
 * in order; the lease's fencing token is never shown to users.
 */
export interface AttemptView {
  readonly task: string;
  readonly attempt: number;
  readonly computeIdentity: string;
  readonly computeService: string;
  readonly hostname: string | null;
  readonly claimedAt: string;
  readonly endedAt: string | null;
  readonly outcome: AttemptOutcome | null;
  readonly result: string | null;
  readonly reason: string | null;
  /** Size of the attempt's log, null until the compute service uploaded one. */
  readonly logSizeBytes: number | null;
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
  /** What the running attempt last reported; null when not running or nothing reported. */
  readonly progress: ProgressView | null;
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
