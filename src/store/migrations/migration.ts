import type { Kysely } from 'kysely';
import type { MigrationHelpers } from '../backend.js';

/**
 * One schema migration. Migrations only go forward, run in one transaction each, and are
 * checksummed by the SQL they issue: editing an applied one is reported as drift.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  /** A breaking migration is one an older release cannot run against (it refuses to start). */
  readonly breaking: boolean;
  up(db: Kysely<unknown>, helpers: MigrationHelpers): Promise<void>;
}
