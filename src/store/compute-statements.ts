import type { Kysely } from 'kysely';
import type { Scope } from '../domain/scope.js';
import type { Database } from './schema.js';
import type { TaskRow } from './queries/tasks.js';

/** Which tasks a claim may take: in one of `scopes`, of one of `protocols`, none in `excludeScopes`. */
export interface ClaimFilter {
  readonly scopes: readonly Scope[];
  readonly protocols?: readonly string[] | undefined;
  /** Tasks in these scopes are never claimed, even where `scopes` covers them. */
  readonly excludeScopes?: readonly Scope[] | undefined;
}

/** Who claims: the service (checked active inside the claim) and what its attempts record. */
export interface Claimer {
  readonly serviceId: string;
  readonly identifier: string;
  readonly hostname: string | null;
}

/** One claim statement's arguments: a hub, the claimer, how many, and the lease it hands out. */
export interface HubClaim extends ClaimFilter {
  readonly networkKey: string;
  readonly claimer: Claimer;
  readonly count: number;
  readonly now: string;
  readonly leaseExpiresAt: string;
  /** Open an attempt per claimed task; false only for the history benchmark. */
  readonly history?: boolean | undefined;
}

/** A successful result recorded together with the completion of the lease it ends. */
export interface CompletedLease {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly resultId: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  /** The result's bytes when they are stored in its row; absent or null when they are a blob. */
  readonly body?: Buffer | null | undefined;
  /** The service the lease was claimed by (read with the lease before the upload). */
  readonly serviceId: string | null;
  readonly now: string;
  /** Close the lease's attempt; false only for the history benchmark. */
  readonly history?: boolean | undefined;
  /** Write the task's `task.complete` event; false only for the events benchmark. */
  readonly events?: boolean | undefined;
}

/**
 * Whose leases a batch of results may complete: only leases held by a service that `identifier`
 * registered, on tasks in one of `scopes`.
 */
export interface LeaseHolder {
  readonly identifier: string;
  readonly scopes: readonly Scope[];
}

/** A lease of a batch completion: `CompletedLease` without what the statement reads itself. */
export type BatchedLease = Omit<CompletedLease, 'now' | 'serviceId' | 'history' | 'events'>;

/**
 * The compute API's hot statements, written once per dialect (`store/dialects/<name>/compute.ts`).
 * Each answers only after its writes hold together; on a backend whose `atomic` is not a no-op they
 * must run inside `Backend.atomic` (or a write transaction) to land as one.
 */
export interface ComputeStatements {
  /**
   * Claims up to `count` tasks of one hub: highest priority first, then in the entries' claim-key
   * order; nothing unless the service is active and the hub's network active with a positive
   * weight. Every claimed task gets a new fencing token, a lease expiry and an open attempt.
   */
  claimFromHub(db: Kysely<Database>, claim: HubClaim): Promise<TaskRow[]>;
  /**
   * Completes a task whose live lease is `leaseToken`: the task becomes `complete`, the result row
   * and the attempt's end are written and the task leaves its hubs. False, writing nothing, when
   * the lease is no longer live.
   */
  completeLease(db: Kysely<Database>, done: CompletedLease): Promise<boolean>;
  /**
   * `completeLease` for many leases, each checked by the write itself (live and held by `holder`),
   * in a fixed number of statements whatever their number. Answers the tasks completed; the others
   * (stale, foreign, outside the scopes, or a task named twice after its first) had nothing written.
   * With `events`, each completed task's `task.complete` event is written by the same statements.
   */
  completeLeases(
    db: Kysely<Database>,
    holder: LeaseHolder,
    leases: readonly BatchedLease[],
    now: string,
    history: boolean,
    events?: boolean,
  ): Promise<Set<string>>;
}
