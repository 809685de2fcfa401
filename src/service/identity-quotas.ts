import type { Kysely } from 'kysely';
import type { Principal } from '../auth/principal.js';
import { principalName } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import * as identityQueries from '../store/queries/identities.js';
import type { QuotaRow } from '../store/queries/identity-quotas.js';
import * as queries from '../store/queries/identity-quotas.js';
import type { Database } from '../store/schema.js';
import { audited } from './audit.js';
import type { IdentityRef } from './identities.js';

/** An identity's quotas; null is no limit (the default: quotas are off until an operator sets one). */
export interface IdentityQuotas {
  /** Most of its tasks that may be waiting at once. */
  readonly maxWaitingTasks: number | null;
  /** Most of its networks that may exist (not deleted) at once. */
  readonly maxNetworks: number | null;
}

export const noQuotas = { maxWaitingTasks: null, maxNetworks: null } as const satisfies IdentityQuotas;

/** What `set-quota` changes: a number sets the limit, null removes it, undefined leaves it. */
export interface QuotaChange {
  readonly maxWaitingTasks?: number | null | undefined;
  readonly maxNetworks?: number | null | undefined;
}

/** The largest limit accepted: far beyond any real queue, and inside both backends' integers. */
export const maxQuotaLimit = 1_000_000_000;

export function quotasView(row: QuotaRow | undefined): IdentityQuotas {
  return row ? { maxWaitingTasks: row.max_waiting_tasks, maxNetworks: row.max_networks } : noQuotas;
}

function checkLimit(name: string, value: number | null | undefined): void {
  if (value === undefined || value === null) return;
  if (!Number.isInteger(value) || value < 0 || value > maxQuotaLimit) {
    throw new AthanorError(
      'invalid_argument',
      `${name} must be a whole number from 0 to ${maxQuotaLimit}, or 'none' for no limit`,
    );
  }
}

/**
 * Sets an identity's quotas; audited. Limits not named keep their value; when no limit is left
 * the identity's row is removed, so it has no quotas at all.
 */
export async function setIdentityQuotas(
  store: Store,
  actor: string,
  ref: IdentityRef,
  change: QuotaChange,
): Promise<IdentityQuotas> {
  const target = `${ref.kind}:${ref.identifier}`;
  return audited(store, { actor, action: 'identity.set-quota', target }, async (trx) => {
    checkLimit('max waiting tasks', change.maxWaitingTasks);
    checkLimit('max networks', change.maxNetworks);
    if (change.maxWaitingTasks === undefined && change.maxNetworks === undefined) {
      throw new AthanorError(
        'invalid_argument',
        'give --max-waiting-tasks or --max-networks (a number or none)',
      );
    }
    if (ref.kind !== 'user') {
      throw new AthanorError(
        'invalid_argument',
        `quotas limit what user identities submit; '${ref.identifier}' is a ${ref.kind} identity`,
      );
    }
    if (!(await identityQueries.findIdentity(trx, ref.kind, ref.identifier))) {
      throw new AthanorError(
        'identity_not_found',
        `no ${ref.kind} identity '${ref.identifier}': 'athanor identity list -t ${ref.kind}' shows the existing ones`,
      );
    }
    const before = quotasView(await queries.findQuota(trx, ref.kind, ref.identifier));
    const after: IdentityQuotas = {
      maxWaitingTasks: change.maxWaitingTasks === undefined ? before.maxWaitingTasks : change.maxWaitingTasks,
      maxNetworks: change.maxNetworks === undefined ? before.maxNetworks : change.maxNetworks,
    };
    if (after.maxWaitingTasks === null && after.maxNetworks === null) {
      await queries.deleteQuota(trx, ref.kind, ref.identifier);
    } else {
      await queries.upsertQuota(trx, {
        kind: ref.kind,
        identifier: ref.identifier,
        max_waiting_tasks: after.maxWaitingTasks,
        max_networks: after.maxNetworks,
        updated_at: new Date().toISOString(),
        updated_by: actor,
      });
    }
    return { result: after, details: { before, after } };
  });
}

export async function identityQuotas(store: Store, ref: IdentityRef): Promise<IdentityQuotas> {
  return quotasView(await queries.findQuota(store.db, ref.kind, ref.identifier));
}

/** Quotas of every identity that has one, keyed `kind:identifier`. */
export async function listQuotasByIdentity(store: Store): Promise<Map<string, IdentityQuotas>> {
  const rows = await queries.listQuotasByIdentity(store.db);
  return new Map([...rows].map(([key, row]) => [key, quotasView(row)]));
}

function setQuotaHint(principal: Principal, flag: string): string {
  return `an operator can raise it with 'athanor identity set-quota -i ${principal.identifier} ${flag} <n>'`;
}

/**
 * Refuses, inside the creating transaction, `adding` more waiting tasks than the caller's quota
 * leaves room for. Costs one primary-key read for an identity without quotas.
 */
export async function checkWaitingTasksQuota(
  trx: Kysely<Database>,
  principal: Principal,
  adding: number,
): Promise<void> {
  const quota = await queries.lockQuota(trx, principal.kind, principal.identifier);
  const limit = quota?.max_waiting_tasks;
  if (limit === null || limit === undefined) return;
  const waiting = await queries.countWaitingTasksCreatedBy(trx, principalName(principal));
  if (waiting + adding > limit) {
    throw new AthanorError(
      'waiting_tasks_quota_exceeded',
      `the waiting-tasks quota of ${principalName(principal)} is ${limit}: ${waiting} of its tasks are waiting, ` +
        `so ${adding} more would exceed it; wait for tasks to be claimed, delete some, or ${setQuotaHint(principal, '--max-waiting-tasks')}`,
      { details: { quota: 'maxWaitingTasks', limit, waiting, requested: adding } },
    );
  }
}

/** Refuses, inside the creating transaction, a new network beyond the caller's networks quota. */
export async function checkNetworksQuota(trx: Kysely<Database>, principal: Principal): Promise<void> {
  const quota = await queries.lockQuota(trx, principal.kind, principal.identifier);
  const limit = quota?.max_networks;
  if (limit === null || limit === undefined) return;
  const networks = await queries.countLiveNetworksCreatedBy(trx, principalName(principal));
  if (networks + 1 > limit) {
    throw new AthanorError(
      'networks_quota_exceeded',
      `the networks quota of ${principalName(principal)} is ${limit} and it has ${networks} networks that are not deleted; ` +
        `set some to deleted, or ${setQuotaHint(principal, '--max-networks')}`,
      { details: { quota: 'maxNetworks', limit, networks } },
    );
  }
}
