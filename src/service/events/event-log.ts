import { EventEmitter } from 'node:events';
import type { Principal } from '../../auth/principal.js';
import { visibleScopes } from '../../auth/principal.js';
import type { EventView } from '../../domain/event-types.js';
import { isEventType } from '../../domain/event-types.js';
import { AthanorError } from '../../domain/errors.js';
import type { Store } from '../../store/open-store.js';
import type { EventRow } from '../../store/queries/events.js';
import * as q from '../../store/queries/events.js';
import { parseQueryScope } from '../networks.js';
import { readsOperatorEvents } from './acting-principal.js';

/** Most events one page (or one sequencer round) holds. */
export const maxEventsPerPage = 1000;

export function eventView(row: EventRow): EventView {
  return {
    id: row.position,
    type: row.type,
    scope: row.scope,
    network: row.network_key,
    subject: row.subject,
    data: row.data === null ? null : (JSON.parse(row.data) as Record<string, unknown>),
    at: row.created_at,
  };
}

const bells = new WeakMap<Store, EventEmitter>();

/**
 * Rings when this process numbered new events, so readers in the same process look at once;
 * readers on other replicas find them on their next poll.
 */
export function eventBell(store: Store): EventEmitter {
  let bell = bells.get(store);
  if (!bell) {
    bell = new EventEmitter();
    bell.setMaxListeners(0);
    bells.set(store, bell);
  }
  return bell;
}

/** Waits until the bell rings or `ms` pass. */
export function waitForEvents(store: Store, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const bell = eventBell(store);
    const done = () => {
      clearTimeout(timer);
      bell.off('sequenced', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    bell.on('sequenced', done);
    signal?.addEventListener('abort', done);
  });
}

export interface SequenceOutcome {
  readonly leader: boolean;
  readonly sequenced: number;
  readonly deleted: number;
}

/**
 * One sequencer round (one leader among replicas): numbers committed events, adds
 * `network.finished` for networks whose hub a task event just emptied, and, when due, deletes
 * events older than the retention.
 */
export async function sequenceRound(
  store: Store,
  options: { readonly retentionMs: number; readonly prune: boolean },
  now = Date.now(),
): Promise<SequenceOutcome> {
  // A read first: an idle log costs no write transaction (nor SQLite's write lock) per round.
  if (!options.prune && !(await q.hasUnsequencedEvents(store.db)))
    return { leader: false, sequenced: 0, deleted: 0 };
  const outcome = await store.transaction(async (trx) => {
    if (!(await store.backend.tryLeaderLock(trx, 'events')))
      return { leader: false, sequenced: 0, deleted: 0 };
    const rows = await q.sequenceEvents(trx, 5000);
    const touched = new Set<string>();
    for (const row of rows)
      if (row.type.startsWith('task.') && row.network_key !== null) touched.add(row.network_key);
    const at = new Date(now).toISOString();
    const finished = await q.finishedNetworks(trx, [...touched]);
    await q.insertEvents(
      trx,
      finished.map((n) => ({ scope: n.scope, type: 'network.finished', networkKey: n.key, subject: n.key })),
      at,
    );
    const deleted = options.prune
      ? await q.deleteEventsBefore(trx, new Date(now - options.retentionMs).toISOString())
      : 0;
    return { leader: true, sequenced: rows.length, deleted };
  });
  if (outcome.sequenced > 0) eventBell(store).emit('sequenced');
  return outcome;
}

export interface EventQuery {
  readonly after?: number | undefined;
  readonly scope?: string | undefined;
  readonly types?: readonly string[] | undefined;
  readonly network?: string | undefined;
  readonly limit?: number | undefined;
}

/** Checks an event type filter: each must be a known type (400 naming the field otherwise). */
export function parseEventTypes(types: readonly string[] | undefined, field: string): string[] {
  const list = (types ?? [])
    .flatMap((t) => t.split(','))
    .map((t) => t.trim())
    .filter(Boolean);
  for (const type of list) {
    if (!isEventType(type)) {
      throw new AthanorError(
        'validation_failed',
        `${field} has an unknown event type '${type.slice(0, 100)}': see 'athanor events types' or docs/operations.md for the list`,
      );
    }
  }
  return list;
}

/**
 * Events after a position that the caller's scopes cover, oldest first; for an admin also the
 * operator scope's events (`backup.failed`), unless a network is asked for.
 */
export async function readEvents(
  store: Store,
  principal: Principal,
  query: EventQuery,
): Promise<EventView[]> {
  const scopes = visibleScopes(principal, parseQueryScope(query.scope));
  const rows = await q.listEvents(store.db, {
    after: query.after ?? 0,
    scopes,
    types: parseEventTypes(query.types, 'querystring/type'),
    networkKeys: query.network === undefined ? undefined : [query.network],
    limit: Math.min(query.limit ?? maxEventsPerPage, maxEventsPerPage),
    operator: await readsOperatorEvents(store, principal),
  });
  return rows.map(eventView);
}
