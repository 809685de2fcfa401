import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import { closeOpenAttempts } from '../store/queries/attempts.js';
import * as q from '../store/queries/compute.js';
import type { LeaseProgress } from '../store/queries/progress.js';
import { storeLeaseProgress } from '../store/queries/progress.js';
import type { LogAppend } from '../store/queries/attempt-log-chunks.js';
import { findManager } from '../store/queries/managers.js';
import { appendLiveLogs } from './attempt-logs.js';

/** Lease and registration timing; the defaults suit a service heartbeating every 20 s. */
export interface ComputeTimings {
  /** How long a claim lasts without a heartbeat; default 120 s. */
  readonly leaseTtlMs: number;
  /** How long a registration lasts without a heartbeat; default 300 s. */
  readonly registrationTtlMs: number;
}

export const defaultTimings: ComputeTimings = { leaseTtlMs: 120_000, registrationTtlMs: 300_000 };

export const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The caller's active registration `serviceId`; else 404 (not the caller's) or 409 (no longer
 * active: its tasks went back to waiting).
 */
export async function requireService(
  store: Store,
  principal: Principal,
  serviceId: string,
  db = store.db,
): Promise<q.ComputeServiceRow> {
  const row = await q.findComputeService(db, serviceId);
  if (!row || row.identifier !== principal.identifier) {
    throw new AthanorError(
      'not_found',
      `no compute service '${serviceId}' registered by ${principal.identifier}`,
    );
  }
  if (row.state !== 'active') {
    throw new AthanorError(
      'stale_lease',
      `compute service '${serviceId}' is ${row.state}: register again (its tasks went back to waiting)`,
    );
  }
  return row;
}

export async function registerService(
  store: Store,
  principal: Principal,
  input: {
    name: string;
    hostname?: string | undefined;
    /** The manager that started it, and as which of its launches. */
    manager?: string | undefined;
    launch?: string | undefined;
  },
  timings: ComputeTimings = defaultTimings,
) {
  const now = Date.now();
  const id = `svc-${randomBytes(16).toString('hex')}`;
  await store.transaction(async (trx) => {
    if (input.manager) {
      const manager = await findManager(trx, input.manager);
      if (!manager || manager.identifier !== principal.identifier)
        throw new AthanorError(
          'not_found',
          `no compute manager '${input.manager}' registered by ${principal.identifier}`,
        );
    }
    await q.insertComputeService(trx, {
      id,
      identifier: principal.identifier,
      name: input.name,
      hostname: input.hostname ?? null,
      state: 'active',
      registered_at: iso(now),
      heartbeat_at: iso(now),
      expires_at: iso(now + timings.registrationTtlMs),
      manager_id: input.manager ?? null,
      launch_id: input.manager ? (input.launch ?? null) : null,
      drain: 0,
    });
  });
  return { id, leaseTtlMs: timings.leaseTtlMs, registrationTtlMs: timings.registrationTtlMs };
}

/** What a compute service says in its heartbeat. */
export interface ServiceHeartbeat {
  /**
   * Every lease the service holds. When given, only these are extended and the service's other
   * leases return to waiting (their results are refused afterwards); default: extend them all.
   */
  readonly leases?: readonly q.LeaseRef[] | undefined;
  /** Progress of held leases since the last heartbeat; stored on each lease still held. */
  readonly progress?: readonly LeaseProgress[] | undefined;
  /** What held leases' attempt logs gained since the last heartbeat; stored for those still held. */
  readonly logs?: readonly LogAppend[] | undefined;
}

/**
 * Keeps a registration alive and extends its unexpired leases: the listed ones, or all of them
 * when the heartbeat lists none. Answers the tasks it still holds.
 */
export async function heartbeat(
  store: Store,
  principal: Principal,
  serviceId: string,
  request: ServiceHeartbeat = {},
  timings: ComputeTimings = defaultTimings,
) {
  return store.transaction(async (trx) => {
    const service = await requireService(store, principal, serviceId, trx);
    const now = Date.now();
    await q.updateComputeService(trx, serviceId, {
      heartbeat_at: iso(now),
      expires_at: iso(now + timings.registrationTtlMs),
    });
    if (request.leases) await releaseUnlistedLeases(trx, serviceId, request.leases, iso(now));
    const leases = await q.extendServiceLeases(
      trx,
      serviceId,
      iso(now),
      iso(now + timings.leaseTtlMs),
      request.leases,
    );
    const held = new Set(leases.map((l) => `${l.id}:${l.lease_token}`));
    const reports = (request.progress ?? []).filter((p) => held.has(`${p.taskId}:${p.leaseToken}`));
    await storeLeaseProgress(trx, reports, iso(now));
    const appends = (request.logs ?? []).filter((l) => held.has(`${l.taskId}:${l.leaseToken}`));
    await appendLiveLogs(trx, appends, iso(now));
    return {
      leases: leases.map((l) => ({ task: l.id, leaseToken: l.lease_token })),
      leaseExpiresAt: iso(now + timings.leaseTtlMs),
      // Its manager asked it to scale in: finish what it holds, claim nothing more, exit.
      drain: service.drain === 1,
    };
  });
}

/**
 * Returns to waiting every task leased to the service that its heartbeat did not list: a claim
 * that committed while its answer was lost leaves a lease the service does not know it holds,
 * and would otherwise be extended by every heartbeat and never run. Returns the released tasks.
 */
export async function releaseUnlistedLeases(
  trx: Store['db'],
  serviceId: string,
  held: readonly q.LeaseRef[],
  now: string,
): Promise<string[]> {
  const released = await q.releaseLeases(trx, { serviceId, except: held }, now);
  await closeOpenAttempts(trx, released, {
    outcome: 'released',
    endedAt: now,
    reason: "its compute service's heartbeat did not list the lease",
  });
  return released;
}

export async function deregisterService(store: Store, principal: Principal, serviceId: string) {
  return store.transaction(async (trx) => {
    const row = await q.findComputeService(trx, serviceId);
    if (!row || row.identifier !== principal.identifier) {
      throw new AthanorError(
        'not_found',
        `no compute service '${serviceId}' registered by ${principal.identifier}`,
      );
    }
    const now = iso(Date.now());
    const released = await q.releaseLeases(trx, { serviceId }, now);
    await closeOpenAttempts(trx, released, {
      outcome: 'released',
      endedAt: now,
      reason: 'the compute service deregistered',
    });
    await q.updateComputeService(trx, serviceId, { state: 'deregistered' });
    return { released };
  });
}
