/** Every kind of event the event log records, as webhooks, `GET /v1/events` and strategies see it. */
export const eventTypes = [
  'network.submitted',
  'network.state_changed',
  'network.finished',
  'task.complete',
  'task.error',
  'task.invalid',
  'task.deleted',
  'task.retries_exhausted',
  'compute_service.lost',
  'strategy.set',
  'strategy.failed',
  'backup.failed',
] as const;

/**
 * The scope of events about the installation rather than any user's objects (`backup.failed`).
 * Not a valid `org-campaign-project` scope, so no stored object or granted scope ever equals it:
 * only identities holding the `admin` role read these events, and a scope filter does not hide
 * them from an admin (a network filter does).
 */
export const operatorEventScope = '@operator';

export type EventType = (typeof eventTypes)[number];

export function isEventType(text: string): text is EventType {
  return (eventTypes as readonly string[]).includes(text);
}

/** One event as every reader gets it. `id` is its position in the log: page and resume with it. */
export interface EventView {
  readonly id: number;
  readonly type: string;
  readonly scope: string;
  readonly network: string | null;
  readonly subject: string | null;
  readonly data: Record<string, unknown> | null;
  readonly at: string;
}

/** A webhook endpoint as its owners see it (never with its secret, which is shown once). */
export interface WebhookView {
  readonly id: string;
  readonly url: string;
  readonly scope: string;
  readonly events: string[];
  readonly state: 'active' | 'disabled';
  readonly disabledReason: string | null;
  readonly deliveredUpTo: number;
  readonly failures: number;
  readonly failingSince: string | null;
  readonly nextAttemptAt: string | null;
  readonly createdBy: string;
  readonly createdAt: string;
}

/** One delivery attempt in an endpoint's log. */
export interface DeliveryView {
  readonly event: number | null;
  readonly type: string;
  readonly attempt: number;
  readonly outcome: 'ok' | 'failed';
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly durationMs: number;
  readonly at: string;
}

/** A network's strategy and its state. */
export interface StrategyView {
  readonly network: string;
  readonly name: string;
  readonly params: unknown;
  readonly state: 'active' | 'stopped';
  readonly lastError: string | null;
  readonly lastRunAt: string | null;
  readonly runs: number;
  readonly setBy: string;
  readonly updatedAt: string;
}
