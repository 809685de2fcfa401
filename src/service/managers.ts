import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { visibleScopes } from '../auth/principal.js';
import type {
  DemandView,
  ManagedServiceView,
  ManagerDecision,
  ManagerInstruction,
  ManagerLaunch,
  ManagerView,
} from '../domain/api-views.js';
import { AthanorError } from '../domain/errors.js';
import type { Scope } from '../domain/scope.js';
import { formatScope, parseScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import { insertAuditEntry } from '../store/queries/audit.js';
import * as q from '../store/queries/managers.js';
import type { ComputeTimings } from './compute-services.js';
import { defaultTimings } from './compute-services.js';
import { audited } from './audit.js';

/** Demand is counted up to this many tasks: enough to size any manager, bounded at any queue size. */
export const demandCountCap = 10_000;
/** How many of a manager's latest decisions its status keeps. */
const keptDecisions = 20;

const iso = (ms: number) => new Date(ms).toISOString();

/** What a manager says about itself when it registers. */
export interface ManagerRegistration {
  readonly name: string;
  readonly hostname?: string | undefined;
  readonly driver: string;
  readonly scopes?: readonly string[] | undefined;
  readonly minServices: number;
  readonly maxServices: number;
}

/** The scopes a caller may serve: what it asked for, intersected with its identity's scopes. */
function servedScopes(principal: Principal, asked: readonly string[] | undefined): Scope[] {
  const wanted = asked?.length ? asked.map(parseScope) : [undefined];
  return wanted.flatMap((s) => visibleScopes(principal, s));
}

function parseStored<T>(text: string | null, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

interface StoredStatus {
  readonly launches: ManagerLaunch[];
  readonly decisions: ManagerDecision[];
}

export function managerView(row: q.ComputeManagerRow): ManagerView {
  const status = parseStored<StoredStatus>(row.status, { launches: [], decisions: [] });
  return {
    id: row.id,
    identifier: row.identifier,
    name: row.name,
    hostname: row.hostname,
    driver: row.driver,
    scopes: parseStored<string[]>(row.scopes, []),
    minServices: row.min_services,
    maxServices: row.max_services,
    state: row.state,
    paused: row.paused === 1,
    cap: row.cap,
    stopRequested: row.stop_requested === 1,
    registeredAt: row.registered_at,
    heartbeatAt: row.heartbeat_at,
    expiresAt: row.expires_at,
    launches: status.launches,
    decisions: status.decisions,
  };
}

/**
 * Registers a manager, or takes back the registration of the same identity and name: a manager
 * restarted under its name finds the services it started. An operator's pause and cap stay.
 */
export async function registerManager(
  store: Store,
  principal: Principal,
  input: ManagerRegistration,
  timings: ComputeTimings = defaultTimings,
) {
  if (input.maxServices < 1 || input.minServices < 0 || input.minServices > input.maxServices) {
    throw new AthanorError(
      'invalid_argument',
      `max services must be at least 1 and min services between 0 and max (got min ${input.minServices}, max ${input.maxServices})`,
    );
  }
  const scopes = input.scopes?.length ? input.scopes.map((s) => formatScope(parseScope(s))) : ['*-*-*'];
  if (servedScopes(principal, scopes).length === 0) {
    throw new AthanorError(
      'forbidden',
      `compute identity '${principal.identifier}' holds no scope within ${scopes.join(', ')}: add one with 'athanor identity add-scope'`,
    );
  }
  const now = Date.now();
  return audited(
    store,
    { actor: `compute:${principal.identifier}`, action: 'compute.manager.register', target: input.name },
    async (trx) => {
      const known = await q.findManagerByName(trx, principal.identifier, input.name);
      const fields = {
        hostname: input.hostname ?? null,
        driver: input.driver,
        scopes: JSON.stringify(scopes),
        min_services: input.minServices,
        max_services: input.maxServices,
        state: 'active' as const,
        stop_requested: 0,
        heartbeat_at: iso(now),
        expires_at: iso(now + timings.registrationTtlMs),
        updated_at: iso(now),
      };
      let id: string;
      if (known) {
        id = known.id;
        await q.updateManager(trx, id, fields);
      } else {
        id = `mgr-${randomBytes(12).toString('hex')}`;
        await q.insertManager(trx, {
          id,
          identifier: principal.identifier,
          name: input.name,
          paused: 0,
          cap: null,
          registered_at: iso(now),
          status: null,
          ...fields,
        });
      }
      return {
        result: { id, registrationTtlMs: timings.registrationTtlMs, resumed: Boolean(known) },
        details: { id, driver: input.driver, scopes, min: input.minServices, max: input.maxServices },
      };
    },
  );
}

async function requireManager(store: Store, principal: Principal, id: string, db = store.db) {
  const row = await q.findManager(db, id);
  if (!row || row.identifier !== principal.identifier) {
    throw new AthanorError('not_found', `no compute manager '${id}' registered by ${principal.identifier}`);
  }
  return row;
}

/** Demand for a caller: claimable waiting tasks in the scopes it asks for and its identity holds. */
export async function demand(
  store: Store,
  principal: Principal,
  filter: { scopes?: readonly string[] | undefined; protocols?: readonly string[] | undefined } = {},
  db = store.db,
): Promise<DemandView> {
  const scopes = servedScopes(principal, filter.scopes);
  const rows = await q.countDemand(db, { scopes, protocols: filter.protocols, cap: demandCountCap });
  const waiting = Math.min(
    demandCountCap,
    rows.reduce((sum, r) => sum + r.waiting, 0),
  );
  return { waiting, capped: waiting >= demandCountCap, cap: demandCountCap, scopes: rows };
}

/** What a manager reports in its heartbeat. */
export interface ManagerHeartbeat {
  /** What its driver runs now. */
  readonly launches: readonly ManagerLaunch[];
  /** Decisions since its last heartbeat; each is audited. */
  readonly decisions?: readonly ManagerDecision[] | undefined;
  /** Launches whose services should finish their leases and exit. */
  readonly drain?: readonly string[] | undefined;
  /** Protocols its services offer: demand counts only those. */
  readonly protocols?: readonly string[] | undefined;
}

function instructionFor(row: q.ComputeManagerRow): Pick<ManagerInstruction, 'instruction' | 'reason'> {
  if (row.stop_requested === 1 || row.state === 'stopped')
    return { instruction: 'shutdown', reason: 'an operator stopped this manager' };
  if (row.paused === 1)
    return { instruction: 'skip', reason: "paused by an operator ('athanor compute manager resume')" };
  return { instruction: 'ok', reason: 'serving demand' };
}

/**
 * A manager's heartbeat: keeps its registration, stores and audits what it reports, and answers
 * the instruction for this cycle with the demand in its scopes and the services the server knows.
 */
export async function managerHeartbeat(
  store: Store,
  principal: Principal,
  managerId: string,
  report: ManagerHeartbeat,
  timings: ComputeTimings = defaultTimings,
): Promise<ManagerInstruction> {
  return store.transaction(async (trx) => {
    const row = await requireManager(store, principal, managerId, trx);
    const now = Date.now();
    const previous = parseStored<StoredStatus>(row.status, { launches: [], decisions: [] });
    const decisions = [...previous.decisions, ...(report.decisions ?? [])].slice(-keptDecisions);
    // A manager that was away long enough to expire is taken back; a stopped one is told to stop.
    const state = row.state === 'expired' ? 'active' : row.state;
    await q.updateManager(trx, managerId, {
      state,
      heartbeat_at: iso(now),
      expires_at: iso(now + timings.registrationTtlMs),
      status: JSON.stringify({ launches: [...report.launches], decisions } satisfies StoredStatus),
      updated_at: iso(now),
    });
    for (const decision of report.decisions ?? []) {
      await insertAuditEntry(trx, {
        at: decision.at,
        actor: `compute:${principal.identifier}`,
        action: `compute.manager.${decision.action}`,
        target: row.name,
        outcome: 'ok',
        details: JSON.stringify({ manager: managerId, count: decision.count, reason: decision.reason }),
      });
    }
    await q.markDrain(trx, managerId, report.drain ?? []);
    const scopes = parseStored<string[]>(row.scopes, []);
    const services = await q.managedServices(trx, managerId);
    return {
      ...instructionFor({ ...row, state }),
      demand: await demand(store, principal, { scopes, protocols: report.protocols }, trx),
      maxServices: Math.min(row.max_services, row.cap ?? Infinity),
      services: services.map((s): ManagedServiceView => ({
        id: s.id,
        launch: s.launch_id,
        registeredAt: s.registered_at,
        heartbeatAt: s.heartbeat_at,
        leases: s.leases,
        draining: s.drain === 1,
      })),
    };
  });
}

/** A manager that stops on its own: its registration ends (its services end by themselves). */
export async function deregisterManager(store: Store, principal: Principal, managerId: string) {
  return store.transaction(async (trx) => {
    await requireManager(store, principal, managerId, trx);
    await q.updateManager(trx, managerId, { state: 'stopped', updated_at: iso(Date.now()) });
    return { id: managerId, state: 'stopped' as const };
  });
}

/** The managers a compute identity registered (its own only). */
export async function listOwnManagers(store: Store, principal: Principal): Promise<ManagerView[]> {
  const rows = await q.listManagers(store.db, { identifier: principal.identifier, includeGone: true });
  return rows.map(managerView);
}

export async function getOwnManager(store: Store, principal: Principal, managerId: string) {
  return managerView(await requireManager(store, principal, managerId));
}

/** Every manager, for the operator; gone ones only with `all`. */
export async function listManagers(store: Store, options: { all?: boolean } = {}): Promise<ManagerView[]> {
  return (await q.listManagers(store.db, { includeGone: options.all })).map(managerView);
}

/** A manager by id, or by name when exactly one identity registered that name. */
async function findByIdOrName(store: Store, ref: string, db = store.db): Promise<q.ComputeManagerRow> {
  const byId = await q.findManager(db, ref);
  if (byId) return byId;
  const named = (await q.listManagers(db, { includeGone: true })).filter((m) => m.name === ref);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    throw new AthanorError(
      'invalid_argument',
      `${named.length} identities registered a manager named '${ref}': name it by id (${named.map((m) => m.id).join(', ')})`,
    );
  }
  throw new AthanorError(
    'not_found',
    `no compute manager '${ref}': see 'athanor compute manager list --all'`,
  );
}

export async function getManager(store: Store, ref: string): Promise<ManagerView> {
  return managerView(await findByIdOrName(store, ref));
}

/** An operator's controls over one manager: pause or resume its starts, cap it, or stop it. */
export interface ManagerControls {
  readonly paused?: boolean | undefined;
  /** A limit below its maximum; null removes the cap. */
  readonly cap?: number | null | undefined;
  readonly stop?: boolean | undefined;
}

export async function controlManager(
  store: Store,
  actor: string,
  ref: string,
  controls: ManagerControls,
): Promise<ManagerView> {
  if (
    controls.cap !== undefined &&
    controls.cap !== null &&
    (!Number.isInteger(controls.cap) || controls.cap < 0)
  )
    throw new AthanorError(
      'invalid_argument',
      `a cap is a whole number of services, 0 or more (got ${controls.cap})`,
    );
  const row = await findByIdOrName(store, ref);
  const action = controls.stop
    ? 'compute.manager.stop-requested'
    : controls.cap !== undefined
      ? 'compute.manager.cap'
      : controls.paused
        ? 'compute.manager.pause'
        : 'compute.manager.resume';
  return audited(store, { actor, action, target: row.name }, async (trx) => {
    await q.updateManager(trx, row.id, {
      ...(controls.paused !== undefined ? { paused: controls.paused ? 1 : 0 } : {}),
      ...(controls.cap !== undefined ? { cap: controls.cap } : {}),
      ...(controls.stop ? { stop_requested: 1 } : {}),
      updated_at: iso(Date.now()),
    });
    const updated = (await q.findManager(trx, row.id))!;
    return {
      result: managerView(updated),
      details: { id: row.id, identifier: row.identifier, ...controls },
    };
  });
}
