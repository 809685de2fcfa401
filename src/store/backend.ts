import type { CreateTableBuilder, Kysely, RawBuilder } from 'kysely';
import type { ComputeStatements } from './compute-statements.js';

import type { BackendName } from '../domain/database-url.js';

export type { BackendName };

/** What a database error means, decided from SQLSTATE or SQLite result codes, never message text. */
export type ErrorClass =
  'unique_violation' | 'foreign_key_violation' | 'busy' | 'unavailable' | 'undefined_table';

/** The few column shapes that differ between backends, handed to every migration. */
export interface MigrationHelpers {
  /** Adds an auto-incrementing integer primary key column. */
  autoIncrementId<TB extends string>(
    table: CreateTableBuilder<TB, never>,
    column: string,
  ): CreateTableBuilder<TB, string>;
  /** The column type of raw bytes: `blob` on SQLite, `bytea` on PostgreSQL. */
  readonly binaryType: 'blob' | 'bytea';
}

/** Everything that differs between SQLite and PostgreSQL lives behind this interface. */
export interface Backend {
  readonly name: BackendName;
  readonly migrationHelpers: MigrationHelpers;
  /**
   * Runs `fn` in a transaction that holds the write lock from its first statement
   * (SQLite `BEGIN IMMEDIATE`; PostgreSQL an ordinary transaction). A transaction the database
   * chose as a deadlock's victim is rolled back and run again, so `fn` must touch nothing but the
   * database it is given.
   */
  writeTransaction<DB, T>(db: Kysely<DB>, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T>;
  /**
   * Holds the migration lock while `fn` runs on one pinned connection; waits at most
   * `timeoutMs`, then throws `lock_timeout`.
   */
  withMigrationLock<DB, T>(
    db: Kysely<DB>,
    timeoutMs: number,
    fn: (conn: Kysely<DB>) => Promise<T>,
  ): Promise<T>;
  /** Describes the live schema as `object → definition` lines, for `database check`. */
  describeSchema<DB>(db: Kysely<DB>): Promise<Map<string, string>>;
  /**
   * Runs `fn` against an empty scratch schema that vanishes afterwards, so the expected schema
   * can be built by running the migrations for real.
   */
  withScratchDatabase<DB, T>(db: Kysely<DB>, fn: (scratch: Kysely<unknown>) => Promise<T>): Promise<T>;
  /** True when `table` exists in the database's current schema. */
  tableExists<DB>(db: Kysely<DB>, table: string): Promise<boolean>;
  /** Drops every table of the database (for `database reset`). */
  dropAllTables<DB>(db: Kysely<DB>): Promise<void>;
  classifyError(error: unknown): ErrorClass | undefined;
  /** The compute API's claim and completion statements, written for this dialect. */
  readonly compute: ComputeStatements;
  /**
   * Runs `fn`, whose writes must land as one: as it is on PostgreSQL, where every compute
   * statement is a single statement; in a write transaction on SQLite, where it is several.
   */
  atomic<DB, T>(db: Kysely<DB>, fn: (db: Kysely<DB>) => Promise<T>): Promise<T>;
  /**
   * How many claim statements a hub that answered fewer tasks than asked is given: PostgreSQL
   * reads a claim's candidates from a snapshot, so a task another claimer took after it is skipped
   * and a fresh statement picks the next one (8); SQLite serializes claims, so one is final (1).
   */
  readonly claimStatementsPerHub: number;
  /** The tables of the database's current schema, by name. */
  listTables<DB>(db: Kysely<DB>): Promise<string[]>;
  /**
   * Inside a write transaction: true for exactly one caller among replicas at a time (the
   * sweeper and scheduler leader). PostgreSQL: a transaction-level advisory lock; SQLite: the
   * write transaction itself already excludes everyone else.
   */
  tryLeaderLock<DB>(trx: Kysely<DB>, name: string): Promise<boolean>;
  /**
   * After `addedRows` rows went into `table` in one go: refreshes the planner's statistics of the
   * table when those rows are a large share of what it last counted. PostgreSQL: `ANALYZE` when
   * they exceed a tenth of `pg_class.reltuples` (or the table was never analyzed), skipped when
   * autovacuum holds the table; SQLite: nothing (its claim plan does not depend on statistics).
   */
  refreshStatistics<DB>(db: Kysely<DB>, table: string, addedRows: number): Promise<void>;
  /** A Kysely instance that executes nothing and records the SQL it would run. */
  createRecorder(): { db: Kysely<unknown>; statements: string[] };
  /**
   * The planner's plan for `query`, one line per step (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL
   * `EXPLAIN`): how an operator or a test sees that a statement reads an index, not a table.
   */
  queryPlan<DB>(db: Kysely<DB>, query: RawBuilder<unknown>): Promise<string[]>;
}

/**
 * A statement whose text starts with this comment is prepared once per PostgreSQL connection and
 * then runs from its plan cache: the hot claim and result statements would otherwise spend about
 * as long being planned as being run. Only fixed texts carry it, so their number stays small.
 * SQLite reads it as a comment.
 */
export const preparedMarker = '/* prepared */';
