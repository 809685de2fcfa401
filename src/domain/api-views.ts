import type { NetworkState } from './network-state.js';
import type { TaskStatus } from './task-state.js';

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
  readonly lastError: string | null;
}

export interface ResultView {
  readonly id: string;
  readonly task: string;
  readonly scope: string;
  readonly attempt: number;
  readonly outcome: 'ok' | 'failed';
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
