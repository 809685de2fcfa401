import type { Generated } from 'kysely';
import type { TaskStatus } from '../domain/task-state.js';

/**
 * Row types of the state store. Timestamps are UTC ISO-8601 text with milliseconds, so both
 * backends sort and compare them the same way and a backup moves between them unchanged.
 * Booleans are integers 0/1 for the same reason.
 */
export interface AthanorMigrationsTable {
  id: number;
  name: string;
  checksum: string;
  breaking: number;
  applied_at: string;
  app_version: string;
  duration_ms: number;
  backup_id: string | null;
}

export interface IdentitiesTable {
  kind: 'user' | 'compute';
  identifier: string;
  key_hash: string;
  disabled: number;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  /** Tokens issued before this instant are refused: set on key change, disable, scope change. */
  credentials_changed_at: string;
}

export interface IdentityScopesTable {
  kind: 'user' | 'compute';
  identifier: string;
  scope: string;
  created_at: string;
}

/** Roles an identity holds; `admin` opens the console's operator pages. */
export interface IdentityRolesTable {
  kind: 'user' | 'compute';
  identifier: string;
  role: 'admin';
  granted_at: string;
  granted_by: string;
}

/** Limits of one identity; null is no limit. An identity without a row has no quotas. */
export interface IdentityQuotasTable {
  kind: 'user' | 'compute';
  identifier: string;
  max_waiting_tasks: number | null;
  max_networks: number | null;
  updated_at: string;
  updated_by: string;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: 'ok' | 'error';
  details: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export type { NetworkState } from '../domain/network-state.js';
import type { NetworkState } from '../domain/network-state.js';
import type { AttemptOutcome, ResultOutcome } from '../domain/outcomes.js';
export type { TaskStatus };

export interface NetworksTable {
  key: string;
  scope: string;
  name: string;
  state: NetworkState;
  created_at: string;
  created_by: string;
  updated_at: string;
}

export interface TransformationsTable {
  key: string;
  scope: string;
  name: string;
  protocol: string;
  /** Canonical JSON. */
  inputs: string;
  created_at: string;
}

export interface NetworkTransformationsTable {
  network_key: string;
  transformation_key: string;
}

export interface TasksTable {
  id: string;
  scope: string;
  transformation_key: string;
  extends_task_id: string | null;
  status: TaskStatus;
  priority: number;
  /** How many times the task was claimed. */
  attempts: number;
  /** How many failures a restart policy sent back to `waiting`. */
  restarts: number;
  created_at: string;
  created_by: string;
  updated_at: string;
  lease_service_id: string | null;
  /** Fencing token: incremented at every claim; every write of the holder must carry it. */
  lease_token: number;
  lease_expires_at: string | null;
  last_error: string | null;
  /** When the status last changed (null only for rows an older release wrote). */
  status_changed_at: string | null;
  /** Why a user set the current status, when they said. */
  status_reason: string | null;
  /** The current lease's last reported progress in [0, 1], when it reported a fraction. */
  progress_fraction: number | null;
  /** The current lease's last progress note. */
  progress_message: string | null;
  /** When the current lease last reported progress; null when it has not. */
  progress_at: string | null;
}

export interface HubsTable {
  network_key: string;
  scope: string;
  weight: number;
}

export interface HubTasksTable {
  network_key: string;
  task_id: string;
  weight: number;
  actioned_at: string;
  /** The task's priority, copied here so claims read one index in claim order. */
  priority: number;
  /** Weighted random claim order within a priority (see domain/claim-key.ts). */
  claim_key: number;
}

export interface RestartPoliciesTable {
  network_key: string;
  pattern: string;
  max_retries: number;
  created_at: string;
}

export interface ComputeServicesTable {
  id: string;
  identifier: string;
  name: string;
  hostname: string | null;
  state: 'active' | 'deregistered' | 'expired';
  registered_at: string;
  heartbeat_at: string;
  expires_at: string;
  /** The manager that started the service, and the launch it was started as; null otherwise. */
  manager_id: string | null;
  launch_id: string | null;
  /** 1 once the manager asked it to drain: its next heartbeat answer says so. */
  drain: number;
}

/** A compute manager's registration, its operator controls and its last decision. */
export interface ComputeManagersTable {
  id: string;
  identifier: string;
  name: string;
  hostname: string | null;
  driver: string;
  /** JSON array of the scopes it asked to serve. */
  scopes: string;
  min_services: number;
  max_services: number;
  state: 'active' | 'stopped' | 'expired';
  /** 1 while an operator paused it: it starts nothing. */
  paused: number;
  /** An operator's limit below `max_services`; null: none. */
  cap: number | null;
  /** 1 once an operator asked it to stop: its next heartbeat answer is `shutdown`. */
  stop_requested: number;
  registered_at: string;
  heartbeat_at: string;
  expires_at: string;
  /** JSON of what it reported last: its services and its decision with the reason. */
  status: string | null;
  updated_at: string;
}

export interface ResultsTable {
  id: string;
  task_id: string;
  scope: string;
  attempt: number;
  lease_token: number;
  outcome: ResultOutcome;
  blob_sha256: string | null;
  size_bytes: number | null;
  error: string | null;
  compute_service_id: string | null;
  created_at: string;
  /**
   * The bytes of a small result, stored in its row (migration 9); null when they are the blob
   * `blob_sha256`. The digest and length are filled either way.
   */
  body: Buffer | null;
}

export type { AttemptOutcome };

/** One claim of a task; open while `ended_at` is null, never changed once closed. */
export interface TaskAttemptsTable {
  task_id: string;
  lease_token: number;
  /** The task's counted attempts at the claim (a released claim is not counted). */
  attempt: number;
  scope: string;
  compute_identity: string;
  compute_service_id: string;
  hostname: string | null;
  claimed_at: string;
  ended_at: string | null;
  outcome: AttemptOutcome | null;
  result_id: string | null;
  /** What ended it, in words, for revocations and expiries. */
  reason: string | null;
  /** The attempt's log blob, attached once by the compute identity that held it. */
  log_sha256: string | null;
  log_size_bytes: number | null;
}

/** What a running attempt's log gained, appended on a heartbeat; replaced by the uploaded log. */
export interface AttemptLogChunksTable {
  task_id: string;
  lease_token: number;
  /** Where the chunk starts in the attempt's log, in bytes. */
  offset_bytes: number;
  size_bytes: number;
  text: string;
  created_at: string;
}

/** One entry of the event log; `position` is set by the sequencer once its transaction committed. */
export interface EventsTable {
  id: Generated<number>;
  position: number | null;
  scope: string;
  type: string;
  network_key: string | null;
  /** The task, network or compute service the event is about. */
  subject: string | null;
  /** JSON details. */
  data: string | null;
  created_at: string;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  scope: string;
  /** JSON array of event types; empty: every type. */
  event_types: string;
  /** The signing secret (`whsec_…`); shown to its creator once, never logged. */
  secret: string;
  state: 'active' | 'disabled';
  disabled_reason: string | null;
  /** Every event up to this position was delivered (or is not for this endpoint). */
  delivered_position: number;
  /** Failed attempts in a row at the next event. */
  failures: number;
  failing_since: string | null;
  next_attempt_at: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  endpoint_id: string;
  event_position: number | null;
  event_type: string;
  attempt: number;
  outcome: 'ok' | 'failed';
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at: string;
}

export interface NetworkStrategiesTable {
  network_key: string;
  name: string;
  /** JSON parameters, checked against the strategy's schema when set. */
  params: string;
  state: 'active' | 'stopped';
  last_error: string | null;
  last_run_at: string | null;
  runs: number;
  created_by: string;
  updated_at: string;
}

/** A signed-in console session; the cookie's value is known only by its SHA-256. */
export interface ConsoleSessionsTable {
  token_sha256: string;
  /** The user identity it signs in. */
  identifier: string;
  /** The identity's `credentials_changed_at` at sign-in: a later change ends the session. */
  credentials_stamp: string;
  created_at: string;
  expires_at: string;
}

export interface Database {
  athanor_migrations: AthanorMigrationsTable;
  identities: IdentitiesTable;
  identity_scopes: IdentityScopesTable;
  identity_roles: IdentityRolesTable;
  identity_quotas: IdentityQuotasTable;
  audit_log: AuditLogTable;
  settings: SettingsTable;
  networks: NetworksTable;
  transformations: TransformationsTable;
  network_transformations: NetworkTransformationsTable;
  tasks: TasksTable;
  hubs: HubsTable;
  hub_tasks: HubTasksTable;
  restart_policies: RestartPoliciesTable;
  compute_services: ComputeServicesTable;
  compute_managers: ComputeManagersTable;
  results: ResultsTable;
  task_attempts: TaskAttemptsTable;
  attempt_log_chunks: AttemptLogChunksTable;
  events: EventsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  network_strategies: NetworkStrategiesTable;
  console_sessions: ConsoleSessionsTable;
}
