import type { BackendName } from '../../store/backend.js';
import { AthanorError } from '../../domain/errors.js';

/**
 * A column value as it travels in a backup: text, integer and real as themselves, bytes (`bytea`,
 * `blob`) as base64 text.
 */
export type RowValue = string | number | null;
export type Row = Readonly<Record<string, RowValue>>;
/** A row as it is inserted on restore: bytes columns decoded from their base64 text. */
export type LoadRow = Readonly<Record<string, RowValue | Buffer>>;

/** Whether a column of this declared type (either backend's, lower case) holds bytes. */
export function isBytesType(type: string): boolean {
  return type === 'bytea' || type === 'blob';
}

export interface TableColumn {
  readonly name: string;
  /** The declared type as the source database reports it (lower case), for the manifest. */
  readonly type: string;
}

export interface TableSchema {
  readonly name: string;
  readonly columns: readonly TableColumn[];
  /** Primary key columns in key order; empty when the table has none (rows then sort by every column). */
  readonly primaryKey: readonly string[];
  /** Tables this one references with foreign keys. */
  readonly references: readonly string[];
}

/**
 * One consistent, read-only view of every table of a database, held open until `close`.
 * Rows stream in primary-key order (byte order for text), so a backup of the same data is the same
 * bytes on either backend.
 */
export interface Snapshot {
  readonly backend: BackendName;
  /** When the snapshot was taken (ISO 8601). */
  readonly takenAt: string;
  /** The backend's own name for the point in time (PostgreSQL: `pg_current_snapshot()`). */
  readonly point: string;
  /** Every table, each after the tables it references. */
  readonly tables: readonly TableSchema[];
  /**
   * The table's rows in backup order, in batches of a few thousand. Batches may be read for several
   * tables at once (PostgreSQL reads them on connections that share the snapshot); at most
   * `parallelTables` of them at a time.
   */
  batches(table: TableSchema): AsyncIterable<readonly Row[]>;
  /**
   * The table's NDJSON lines as the database itself writes them (PostgreSQL's `COPY … TO STDOUT`),
   * in blocks of whole lines, each line exactly what `lineEncoder` makes of the row; the same
   * rows, order and connections as `batches`. Absent where rows are encoded here instead.
   */
  lines?(table: TableSchema): AsyncIterable<Buffer>;
  /** How many tables can be read at the same time; 1 when reads share one connection. */
  readonly parallelTables: number;
  close(): Promise<void>;
}

/** The rows of one table, one at a time. */
export async function* snapshotRows(snapshot: Snapshot, table: TableSchema): AsyncGenerator<Row> {
  for await (const batch of snapshot.batches(table)) yield* batch;
}

/**
 * Turns a row into its NDJSON line (without the line break). Builds the same text as
 * `JSON.stringify(row)` for a row whose keys are `columns` in order, without an object walk per row.
 */
export function lineEncoder(columns: readonly string[]): (row: Row) => string {
  const prefixes = columns.map((name, i) => `${i === 0 ? '{' : ','}${JSON.stringify(name)}:`);
  return (row) => {
    let line = '';
    for (let i = 0; i < columns.length; i++) {
      const value = row[columns[i] as string];
      line += prefixes[i] + (value === null || value === undefined ? 'null' : JSON.stringify(value));
    }
    return columns.length === 0 ? '{}' : `${line}}`;
  };
}

/** Orders tables so that each comes after the tables it references (cycles keep name order). */
export function dependencyOrder(tables: readonly TableSchema[]): TableSchema[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const sorted: TableSchema[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (table: TableSchema) => {
    if (state.has(table.name)) return;
    state.set(table.name, 'visiting');
    for (const name of [...table.references].sort()) {
      const referenced = byName.get(name);
      if (referenced && name !== table.name) visit(referenced);
    }
    state.set(table.name, 'done');
    sorted.push(table);
  };
  for (const table of [...tables].sort((a, b) => a.name.localeCompare(b.name))) visit(table);
  return sorted;
}

/** Converts a value read from either backend to its backup form, or says why it cannot. */
export function backupValue(table: string, column: string, value: unknown): RowValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw unsupportedValue(table, column, String(value));
    return value;
  }
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw unsupportedValue(table, column, `integer ${value} (beyond ±2^53)`);
    }
    return Number(value);
  }
  if (Buffer.isBuffer(value)) return value.toString('base64');
  throw unsupportedValue(table, column, typeof value);
}

export function unsupportedValue(table: string, column: string, what: string): AthanorError {
  return new AthanorError(
    'backup_incompatible',
    `cannot back up ${table}.${column}: it holds ${what}, and backups carry only text, bytes, whole ` +
      `numbers within ±2^53 and finite reals. Fix the row or the column type, then retry`,
  );
}
