import { randomBytes } from 'node:crypto';
import type { DeliveryView, WebhookView } from '../../domain/event-types.js';
export type { DeliveryView, WebhookView };
import type { Principal } from '../../auth/principal.js';
import { principalName, visibleScopes } from '../../auth/principal.js';
import { AthanorError } from '../../domain/errors.js';
import type { Scope } from '../../domain/scope.js';
import { formatScope, parseScope, scopeCovers } from '../../domain/scope.js';
import type { Store } from '../../store/open-store.js';
import { insertAuditEntry } from '../../store/queries/audit.js';
import { lastPosition, listEvents } from '../../store/queries/events.js';
import type { WebhookDeliveryRow, WebhookEndpointRow } from '../../store/queries/webhooks.js';
import * as q from '../../store/queries/webhooks.js';
import { audited } from '../audit.js';
import { currentPrincipal, readsOperatorEvents } from './acting-principal.js';
import { eventView, parseEventTypes } from './event-log.js';
import type { DeliveryAnswer, DeliveryLimits } from './webhook-request.js';
import { checkWebhookTarget, parseWebhookUrl, sendWebhook } from './webhook-request.js';

/** How long and how often a failing delivery is retried; the defaults are the settings'. */
export interface RetryPolicy {
  /** First retry after about this long; doubles per failure; default 1000. */
  readonly retryBaseMs: number;
  /** Longest wait between attempts; default 300000 (5 min). */
  readonly retryMaxMs: number;
  /** An endpoint failing this long is disabled (with an audit entry); default 86400000 (1 day). */
  readonly retryForMs: number;
}

export type WebhookSettings = DeliveryLimits & RetryPolicy;

function webhookView(row: WebhookEndpointRow): WebhookView {
  return {
    id: row.id,
    url: row.url,
    scope: row.scope,
    events: JSON.parse(row.event_types) as string[],
    state: row.state,
    disabledReason: row.disabled_reason,
    deliveredUpTo: row.delivered_position,
    failures: row.failures,
    failingSince: row.failing_since,
    nextAttemptAt: row.next_attempt_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

const deliveryView = (row: WebhookDeliveryRow): DeliveryView => ({
  event: row.event_position,
  type: row.event_type,
  attempt: row.attempt,
  outcome: row.outcome,
  statusCode: row.status_code,
  error: row.error,
  durationMs: row.duration_ms,
  at: row.at,
});

/** A webhook scope may hold wildcards, but must lie inside one of the caller's scopes. */
function webhookScope(principal: Principal, text: string): Scope {
  let scope: Scope;
  try {
    scope = parseScope(text);
  } catch (error) {
    throw new AthanorError('validation_failed', `body/scope: ${(error as Error).message}`);
  }
  if (!principal.scopes.some((held) => scopeCovers(held, scope))) {
    throw new AthanorError(
      'forbidden',
      `${principalName(principal)} holds no scope covering '${formatScope(scope)}'; a webhook sees only what its owner may see`,
    );
  }
  return scope;
}

export interface AddWebhookInput {
  readonly url: string;
  readonly scope: string;
  readonly events?: readonly string[] | undefined;
}

/** Registers an endpoint; answers it with its signing secret, which is shown this once only. */
export async function addWebhook(
  store: Store,
  principal: Principal,
  input: AddWebhookInput,
  settings: Pick<DeliveryLimits, 'allowPrivate'>,
): Promise<WebhookView & { secret: string }> {
  const url = parseWebhookUrl(input.url, 'body/url');
  const scope = webhookScope(principal, input.scope);
  const events = parseEventTypes(input.events, 'body/events');
  await checkWebhookTarget(url, settings.allowPrivate, 'body/url');
  const now = new Date().toISOString();
  const id = `wh_${randomBytes(12).toString('hex')}`;
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const row = await audited(
    store,
    { actor: principalName(principal), action: 'webhook.add', target: id },
    async (trx) => {
      const row: WebhookEndpointRow = {
        id,
        url: url.toString(),
        scope: formatScope(scope),
        event_types: JSON.stringify(events),
        secret,
        state: 'active',
        disabled_reason: null,
        // Deliveries start with the events after this one: an endpoint is not sent the past.
        delivered_position: await lastPosition(trx),
        failures: 0,
        failing_since: null,
        next_attempt_at: null,
        created_by: principalName(principal),
        created_at: now,
        updated_at: now,
      };
      await q.insertEndpoint(trx, row);
      return { result: row, details: { url: url.origin, scope: row.scope, events } };
    },
  );
  return { ...webhookView(row), secret };
}

/** Endpoints whose scope one of the caller's scopes covers. */
export async function listWebhooks(store: Store, principal: Principal): Promise<WebhookView[]> {
  const rows = await q.listEndpoints(store.db);
  return rows.filter((r) => visibleTo(principal, r)).map(webhookView);
}

function visibleTo(principal: Principal, row: WebhookEndpointRow): boolean {
  const scope = parseScope(row.scope);
  return principal.scopes.some((held) => scopeCovers(held, scope));
}

async function requireWebhook(store: Store, principal: Principal, id: string): Promise<WebhookEndpointRow> {
  const row = await q.findEndpoint(store.db, id);
  if (!row || !visibleTo(principal, row))
    throw new AthanorError('not_found', `no webhook '${id}' in your scopes`);
  return row;
}

export async function getWebhook(
  store: Store,
  principal: Principal,
  id: string,
  deliveries = 20,
): Promise<WebhookView & { deliveries: DeliveryView[] }> {
  const row = await requireWebhook(store, principal, id);
  const log = await q.listDeliveries(store.db, id, Math.min(Math.max(deliveries, 1), 1000));
  return { ...webhookView(row), deliveries: log.map(deliveryView) };
}

export async function removeWebhook(
  store: Store,
  principal: Principal,
  id: string,
): Promise<{ id: string; removed: true }> {
  await requireWebhook(store, principal, id);
  await audited(
    store,
    { actor: principalName(principal), action: 'webhook.remove', target: id },
    async (trx) => {
      await q.deleteEndpoint(trx, id);
      return { result: undefined };
    },
  );
  return { id, removed: true };
}

/** Turns a disabled endpoint back on; delivery resumes at the event it stopped at. */
export async function enableWebhook(store: Store, principal: Principal, id: string): Promise<WebhookView> {
  await requireWebhook(store, principal, id);
  await audited(
    store,
    { actor: principalName(principal), action: 'webhook.enable', target: id },
    async (trx) => {
      await q.updateEndpoint(trx, id, {
        state: 'active',
        disabled_reason: null,
        failures: 0,
        failing_since: null,
        next_attempt_at: null,
        updated_at: new Date().toISOString(),
      });
      return { result: undefined };
    },
  );
  return webhookView((await q.findEndpoint(store.db, id))!);
}

/** Sends a signed `webhook.test` message now and records it in the delivery log. */
export async function testWebhook(
  store: Store,
  principal: Principal,
  id: string,
  limits: DeliveryLimits,
): Promise<DeliveryAnswer> {
  const row = await requireWebhook(store, principal, id);
  const at = new Date().toISOString();
  const body = JSON.stringify({ type: 'webhook.test', timestamp: at, data: { webhook: id } });
  const answer = await sendWebhook(row, { id: `msg_test_${randomBytes(8).toString('hex')}`, body }, limits);
  await q.insertDeliveries(store.db, [
    {
      endpoint_id: id,
      event_position: null,
      event_type: 'webhook.test',
      attempt: 1,
      outcome: answer.ok ? 'ok' : 'failed',
      status_code: answer.statusCode,
      error: answer.error,
      duration_ms: answer.durationMs,
      at,
    },
  ]);
  return answer;
}

/** The wait before attempt `failures + 1`: exponential, capped, with full jitter in its upper half. */
export function retryDelayMs(failures: number, policy: RetryPolicy, random = Math.random()): number {
  const exponential = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(exponential / 2 + (exponential / 2) * random);
}

/** The message of one event as delivered: the Standard Webhooks payload shape. */
export function eventMessage(event: ReturnType<typeof eventView>): { id: string; body: string } {
  return {
    id: `evt_${event.id}`,
    body: JSON.stringify({ type: event.type, timestamp: event.at, data: event }),
  };
}

/**
 * Delivers the pending events of one endpoint, in order, until one fails or none is left. A
 * failure sets the next attempt after a jittered backoff; an endpoint failing past the retry
 * window is disabled, with an audit entry. Answers how many events it delivered.
 */
export async function deliverEndpoint(
  store: Store,
  endpoint: WebhookEndpointRow,
  settings: WebhookSettings,
  options: { readonly batch: number; readonly stillLeader: () => boolean },
): Promise<number> {
  const now = Date.now();
  if (endpoint.next_attempt_at !== null && Date.parse(endpoint.next_attempt_at) > now) return 0;
  const owner = await currentPrincipal(store, endpoint.created_by);
  const scopes = owner ? visibleScopes(owner, parseScope(endpoint.scope)) : [];
  const top = await lastPosition(store.db);
  const events = await listEvents(store.db, {
    after: endpoint.delivered_position,
    scopes,
    types: JSON.parse(endpoint.event_types) as string[],
    limit: options.batch,
    operator: owner ? await readsOperatorEvents(store, owner) : false,
  });
  let delivered = 0;
  let position = endpoint.delivered_position;
  let stored = position;
  let failures = endpoint.failures;
  // Successful deliveries are recorded in batches (one transaction per second or 50 deliveries):
  // a write per delivery per endpoint would cost the queue a commit each. Lost on a crash, they
  // are delivered again: at least once.
  let log: q.NewDelivery[] = [];
  let flushedAt = Date.now();
  const flush = async () => {
    if (log.length === 0 && stored === position) return;
    const rows = log;
    log = [];
    flushedAt = Date.now();
    await store.transaction(async (trx) => {
      await q.insertDeliveries(trx, rows);
      await q.updateEndpoint(trx, endpoint.id, {
        delivered_position: position,
        failures: 0,
        failing_since: null,
        next_attempt_at: null,
        updated_at: new Date().toISOString(),
      });
    });
    stored = position;
  };
  for (const row of events) {
    if (!options.stillLeader()) break;
    const event = eventView(row);
    const answer = await sendWebhook(endpoint, eventMessage(event), settings);
    const at = new Date().toISOString();
    const entry: q.NewDelivery = {
      endpoint_id: endpoint.id,
      event_position: event.id,
      event_type: event.type,
      attempt: failures + 1,
      outcome: answer.ok ? 'ok' : 'failed',
      status_code: answer.statusCode,
      error: answer.error,
      duration_ms: answer.durationMs,
      at,
    };
    if (!answer.ok) {
      await flush();
      await q.insertDeliveries(store.db, [entry]);
      failures += 1;
      await recordFailure(
        store,
        endpoint,
        { position, failures, at, error: answer.error ?? 'failed' },
        settings,
      );
      return delivered;
    }
    log.push(entry);
    delivered += 1;
    failures = 0;
    position = event.id;
    if (log.length >= 50 || Date.now() - flushedAt >= 1000) await flush();
  }
  // Every event up to `top` was either delivered or not for this endpoint.
  if (events.length < options.batch && top > position && options.stillLeader()) position = top;
  await flush();
  return delivered;
}

async function recordFailure(
  store: Store,
  endpoint: WebhookEndpointRow,
  failure: { position: number; failures: number; at: string; error: string },
  policy: RetryPolicy,
): Promise<void> {
  const failingSince = endpoint.failures > 0 && endpoint.failing_since ? endpoint.failing_since : failure.at;
  const failingForMs = Date.parse(failure.at) - Date.parse(failingSince);
  if (failingForMs >= policy.retryForMs) {
    const reason = `deliveries failed for ${Math.round(failingForMs / 1000)} s (last: ${failure.error.slice(0, 200)}); enable it again with 'athanor webhook enable ${endpoint.id}'`;
    await store.transaction(async (trx) => {
      await q.updateEndpoint(trx, endpoint.id, {
        state: 'disabled',
        disabled_reason: reason,
        failures: failure.failures,
        failing_since: failingSince,
        next_attempt_at: null,
        updated_at: failure.at,
      });
      await insertAuditEntry(trx, {
        at: failure.at,
        actor: 'webhook-delivery',
        action: 'webhook.disable',
        target: endpoint.id,
        outcome: 'ok',
        details: JSON.stringify({
          failures: failure.failures,
          failingSince,
          lastError: failure.error.slice(0, 200),
        }),
      });
    });
    return;
  }
  const next = Date.parse(failure.at) + retryDelayMs(failure.failures, policy);
  await q.updateEndpoint(store.db, endpoint.id, {
    failures: failure.failures,
    failing_since: failingSince,
    next_attempt_at: new Date(next).toISOString(),
    updated_at: failure.at,
  });
}
