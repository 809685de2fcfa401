import os from 'node:os';
import { osUserName } from '../config/environment.js';
import type { Kysely } from 'kysely';
import { AthanorError, errorFacts } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import type { AuditRow } from '../store/queries/audit.js';
import { insertAuditEntry, listAuditActions, listAuditEntries } from '../store/queries/audit.js';
import type { Database } from '../store/schema.js';

export type { AuditRow };

/** Who acted: `osuser@host` for the CLI, `user:<id>` for an API identity. */
export function osActor(): string {
  return `${osUserName()}@${os.hostname()}`;
}

export interface AuditEvent {
  readonly actor: string;
  readonly action: string;
  readonly target?: string | undefined;
}

/**
 * Runs an admin action in a write transaction and records it in the audit log in the same
 * transaction. A failure is recorded too, with its error code, after the rollback.
 * Details must never hold a secret: callers pass only names, counts and ids.
 */
export async function audited<T>(
  store: Store,
  event: AuditEvent,
  action: (trx: Kysely<Database>) => Promise<{ result: T; details?: Record<string, unknown> }>,
): Promise<T> {
  try {
    return await store.transaction(async (trx) => {
      const { result, details } = await action(trx);
      await insertAuditEntry(trx, {
        at: new Date().toISOString(),
        actor: event.actor,
        action: event.action,
        target: event.target ?? null,
        outcome: 'ok',
        details: details ? JSON.stringify(details) : null,
      });
      return result;
    });
  } catch (error) {
    await recordFailure(store, event, error);
    throw error;
  }
}

/** Records an action that failed; never throws (the original error is what matters). */
export async function recordFailure(store: Store, event: AuditEvent, error: unknown): Promise<void> {
  try {
    await insertAuditEntry(store.db, {
      at: new Date().toISOString(),
      actor: event.actor,
      action: event.action,
      target: event.target ?? null,
      outcome: 'error',
      details: JSON.stringify(errorFacts(error)),
    });
  } catch {
    // The audit table may not exist yet (a failed first migration); the error still reaches the user.
  }
}

/** Records an action that ran outside a transaction of its own (migrations, backups). */
export async function recordAudit(
  store: Store,
  event: AuditEvent & { outcome: 'ok' | 'error'; details?: Record<string, unknown> },
): Promise<void> {
  await insertAuditEntry(store.db, {
    at: new Date().toISOString(),
    actor: event.actor,
    action: event.action,
    target: event.target ?? null,
    outcome: event.outcome,
    details: event.details ? JSON.stringify(event.details) : null,
  });
}

/** The families of audited actions (`identity.add`, `backup.create`, …) this release records. */
export const auditActionFamilies: readonly string[] = [
  'identity',
  'database',
  'backup',
  'maintenance',
  'objects',
  'network',
  'task',
  'deploy',
  'webhook',
  'strategy',
];

export async function listAudit(
  store: Store,
  filter: {
    since?: string | undefined;
    until?: string | undefined;
    action?: string | undefined;
    actor?: string | undefined;
    limit?: number | undefined;
  },
): Promise<AuditRow[]> {
  const prefix = filter.action;
  if (prefix !== undefined) {
    // A typo ('identiy') would otherwise look like a quiet log: refuse it and list what exists.
    const known = new Set([...auditActionFamilies, ...(await listAuditActions(store.db))]);
    if (![...known].some((action) => action.startsWith(prefix))) {
      throw new AthanorError(
        'invalid_argument',
        `--action '${prefix}' matches no audited action; use one of: ${[...known].sort().join(', ')}`,
      );
    }
  }
  return listAuditEntries(store.db, { ...filter, limit: filter.limit ?? 1000 });
}
