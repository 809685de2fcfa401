import type { Generated } from 'kysely';

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

export interface Database {
  athanor_migrations: AthanorMigrationsTable;
  identities: IdentitiesTable;
  identity_scopes: IdentityScopesTable;
  audit_log: AuditLogTable;
  settings: SettingsTable;
}
