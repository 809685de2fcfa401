import type { Kysely } from 'kysely';
import type { EventType } from '../../domain/event-types.js';
import { operatorEventScope } from '../../domain/event-types.js';
import type { NewEvent } from '../../store/queries/events.js';
import { insertEvents, insertTaskEvents } from '../../store/queries/events.js';
import type { Database } from '../../store/schema.js';

// The one place each kind of event is written, inside the transaction of the change it describes
// (see docs/architecture.md, "Events"). Set-based: one INSERT … SELECT per batch of tasks.

/** Events about tasks, one per task and hub it is on; call before the change takes them off their hubs. */
export async function recordTaskEvents(
  trx: Kysely<Database>,
  taskIds: readonly string[],
  types: readonly EventType[],
  now: string,
  data: Record<string, unknown> | null = null,
): Promise<void> {
  if (taskIds.length === 0) return;
  for (const type of types) await insertTaskEvents(trx, taskIds, type, now, data);
}

/** `network.submitted` or `network.state_changed`. */
export async function recordNetworkEvent(
  trx: Kysely<Database>,
  network: { key: string; scope: string },
  type: Extract<EventType, `network.${string}` | `strategy.${string}`>,
  now: string,
  data: Record<string, unknown> | null = null,
): Promise<void> {
  await insertEvents(
    trx,
    [{ scope: network.scope, type, networkKey: network.key, subject: network.key, data }],
    now,
  );
}

/**
 * `compute_service.lost`, once per scope whose running tasks the lost service held (a service that
 * held nothing concerns no user).
 */
export async function recordServiceLost(
  trx: Kysely<Database>,
  serviceId: string,
  releasedTaskIds: readonly string[],
  now: string,
): Promise<void> {
  if (releasedTaskIds.length === 0) return;
  const rows = await trx
    .selectFrom('tasks')
    .select(['scope', (eb) => eb.fn.countAll<number>().as('n')])
    .where('id', 'in', [...releasedTaskIds].slice(0, 10_000))
    .groupBy('scope')
    .execute();
  const events: NewEvent[] = rows.map((r) => ({
    scope: r.scope,
    type: 'compute_service.lost',
    subject: serviceId,
    data: { service: serviceId, tasksReturned: Number(r.n) },
  }));
  await insertEvents(trx, events, now);
}

/**
 * `backup.failed`, in the operator scope (admins only): a backup, scheduled or by hand, that
 * wrote nothing. `data` holds the target's URL, the backup id and the error's code and message.
 */
export async function recordBackupFailed(
  db: Kysely<Database>,
  data: { target: string; backupId: string; actor: string; code: string; message: string },
  now: string,
): Promise<void> {
  await insertEvents(
    db,
    [{ scope: operatorEventScope, type: 'backup.failed', subject: data.backupId, data }],
    now,
  );
}
