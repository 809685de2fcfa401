import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { AthanorError } from '../../domain/errors.js';
import { copyIntoPostgres } from '../../store/dialects/postgres.js';
import type { LoadRow, Row, RowValue, Snapshot, TableSchema } from './snapshot.js';
import { backupValue, dependencyOrder, lineEncoder, unsupportedValue } from './snapshot.js';

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Column types a backup carries; anything else is refused up front, naming the column. */
const supportedTypes = new Set([
  'text',
  'character varying',
  'character',
  'smallint',
  'integer',
  'bigint',
  'real',
  'double precision',
  'bytea',
]);
const textTypes = new Set(['text', 'character varying', 'character']);

const fetchSize = 5000;
const int8Oid = 20;
/** Connections a backup reads tables on at the same time, as `pg_dump -j` does. */
export const defaultParallelTables = 4;

function snapshotClient(url: string): pg.Client {
  const client = new pg.Client({
    connectionString: url === 'postgres:' ? undefined : url,
    application_name: 'athanor-backup',
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        // Exact 64-bit integers: backupValue refuses one that a JSON number cannot hold.
        oid === int8Oid
          ? (value: string) => BigInt(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  client.on('error', () => {});
  return client;
}

/**
 * Opens one `REPEATABLE READ READ ONLY` transaction on a connection of its own and exports its
 * snapshot; up to `parallelTables - 1` more connections adopt that same snapshot (`SET TRANSACTION
 * SNAPSHOT`, as `pg_dump -j` does), so tables read on any of them come from one point in time.
 * Each table is read through a server-side cursor, never held whole in memory.
 */
export async function openPostgresSnapshot(
  url: string,
  options: { readonly parallelTables?: number } = {},
): Promise<Snapshot> {
  const client = snapshotClient(url);
  try {
    await client.connect();
  } catch (cause) {
    throw new AthanorError(
      'database_unavailable',
      `cannot reach PostgreSQL for the backup: ${(cause as Error).message}. Check ATHANOR_DATABASE_URL`,
      { cause },
    );
  }
  const clients = [client];
  const endAll = () => Promise.all(clients.map((c) => c.end().catch(() => {})));
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query('set local idle_in_transaction_session_timeout = 0');
    const point = await client.query<{ point: string; taken_at: Date; exported: string }>(
      'select pg_current_snapshot()::text as point, now() as taken_at, pg_export_snapshot() as exported',
    );
    const exported = point.rows[0]?.exported ?? '';
    const names = await client.query<{ tablename: string }>(
      'select tablename from pg_tables where schemaname = current_schema() order by tablename',
    );
    const tables: TableSchema[] = [];
    for (const { tablename } of names.rows) tables.push(await describeTable(client, tablename));
    const wanted = Math.max(1, Math.min(options.parallelTables ?? defaultParallelTables, tables.length));
    for (let i = 1; i < wanted; i++) {
      const extra = snapshotClient(url);
      try {
        await extra.connect();
        await extra.query('begin isolation level repeatable read read only');
        await extra.query('set local idle_in_transaction_session_timeout = 0');
        await extra.query(`set transaction snapshot '${exported.replace(/'/g, "''")}'`);
      } catch {
        // No connection slot to spare (max_connections): read on fewer connections, same snapshot.
        await extra.end().catch(() => {});
        break;
      }
      clients.push(extra);
    }
    const idle = [...clients];
    let cursors = 0;
    let closed = false;
    return {
      backend: 'postgres',
      takenAt: (point.rows[0]?.taken_at ?? new Date()).toISOString(),
      point: `pg_current_snapshot ${point.rows[0]?.point ?? ''}`,
      tables: dependencyOrder(tables),
      parallelTables: clients.length,
      async *batches(table) {
        const reader = idle.pop();
        if (!reader)
          throw new AthanorError('internal', 'more tables read at once than the snapshot has connections');
        try {
          yield* readBatches(reader, table, `athanor_backup_${cursors++}`);
        } finally {
          idle.push(reader);
        }
      },
      async *lines(table) {
        const reader = idle.pop();
        if (!reader)
          throw new AthanorError('internal', 'more tables read at once than the snapshot has connections');
        try {
          yield* copyLines(reader, table);
        } finally {
          idle.push(reader);
        }
      },
      async close() {
        if (closed) return;
        closed = true;
        // The exporting transaction ends last: the others' snapshot is only guaranteed while it lives.
        for (const c of [...clients].reverse()) await c.query('commit').catch(() => {});
        await endAll();
      },
    };
  } catch (error) {
    await endAll();
    throw error;
  }
}

async function describeTable(client: pg.Client, name: string): Promise<TableSchema> {
  const regclass = `${quote(name)}`;
  const columns = await client.query<{ column_name: string; data_type: string }>(
    `select column_name, data_type from information_schema.columns
     where table_schema = current_schema() and table_name = $1 order by ordinal_position`,
    [name],
  );
  for (const c of columns.rows) {
    if (!supportedTypes.has(c.data_type)) {
      throw new AthanorError(
        'backup_incompatible',
        `cannot back up ${name}.${c.column_name}: its type '${c.data_type}' is not one a backup carries ` +
          `(text, bytea, integer, real and their variants). Change the column type in a migration`,
      );
    }
  }
  const primaryKey = await client.query<{ attname: string }>(
    `select a.attname from pg_index i
     join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
     where i.indrelid = $1::regclass and i.indisprimary
     order by array_position(i.indkey::int2[], a.attnum)`,
    [regclass],
  );
  const references = await client.query<{ relname: string }>(
    `select distinct r.relname from pg_constraint c join pg_class r on r.oid = c.confrelid
     where c.contype = 'f' and c.conrelid = $1::regclass`,
    [regclass],
  );
  return {
    name,
    columns: columns.rows.map((c) => ({ name: c.column_name, type: c.data_type })),
    primaryKey: primaryKey.rows.map((r) => r.attname),
    references: references.rows.map((r) => r.relname),
  };
}

async function* readBatches(client: pg.Client, table: TableSchema, cursor: string): AsyncGenerator<Row[]> {
  const names = table.columns.map((c) => c.name);
  const textColumns = new Set(table.columns.filter((c) => textTypes.has(c.type)).map((c) => c.name));
  // COLLATE "C" orders text by UTF-8 bytes, as SQLite's BINARY does: same rows, same order, same bytes.
  const order = (table.primaryKey.length > 0 ? table.primaryKey : names)
    .map((c) => (textColumns.has(c) ? `${quote(c)} collate "C"` : quote(c)))
    .join(', ');
  await client.query(
    `declare ${quote(cursor)} no scroll cursor for select ${names.map(quote).join(', ')} from ${quote(table.name)} order by ${order}`,
  );
  try {
    for (;;) {
      const batch = await client.query<unknown[]>({
        text: `fetch forward ${fetchSize} from ${quote(cursor)}`,
        rowMode: 'array',
      });
      const rows: Row[] = [];
      for (const raw of batch.rows) {
        const row: Record<string, string | number | null> = {};
        for (let i = 0; i < names.length; i++) {
          const column = names[i] as string;
          row[column] = backupValue(table.name, column, raw[i]);
        }
        rows.push(row);
      }
      if (rows.length > 0) yield rows;
      if (batch.rows.length < fetchSize) break;
    }
  } finally {
    await client.query(`close ${quote(cursor)}`).catch(() => {});
  }
}

const floatTypes = new Set(['real', 'double precision']);
const maxSafe = '9007199254740991';
/** Lines gathered into one block before they are handed on: about 256 KiB. */
const blockBytes = 256 * 1024;
const lineFeed = 0x0a;
/**
 * A number PostgreSQL spells differently from JavaScript: an exponent (`1e-05`, `1e+20`) or `-0`.
 * Only such lines are parsed and encoded again, so that a line is the same bytes on either backend.
 */
const foreignNumber = /[0-9]e[+-]|[:,]-0[,}]/;

/**
 * The table's rows as NDJSON lines written by PostgreSQL: `row_to_json` of each row in backup
 * order, through `COPY … TO STDOUT`, all in C on the server. CSV format with a delimiter and a
 * quote byte no JSON text holds (JSON escapes every control character) passes each line through
 * verbatim; a row holding a value a backup cannot carry comes out as an empty line instead.
 */
async function* copyLines(client: pg.Client, table: TableSchema): AsyncGenerator<Buffer> {
  const names = table.columns.map((c) => c.name);
  const textColumns = new Set(table.columns.filter((c) => textTypes.has(c.type)).map((c) => c.name));
  const order = (table.primaryKey.length > 0 ? table.primaryKey : names)
    .map((c) => (textColumns.has(c) ? `t.${quote(c)} collate "C"` : `t.${quote(c)}`))
    .join(', ');
  const bigints = table.columns.filter((c) => c.type === 'bigint').map((c) => c.name);
  const floats = table.columns.filter((c) => floatTypes.has(c.type)).map((c) => c.name);
  const refused = [
    ...bigints.map((c) => `t.${quote(c)} not between -${maxSafe} and ${maxSafe}`),
    ...floats.map((c) => `t.${quote(c)} in ('NaN', 'Infinity', '-Infinity')`),
  ];
  const line =
    refused.length > 0
      ? `case when ${refused.join(' or ')} then null else row_to_json(t)::text end`
      : 'row_to_json(t)::text';
  // Bytes travel as base64 text (without the line breaks `encode` puts in every 76 characters).
  const bytes = new Set(table.columns.filter((c) => c.type === 'bytea').map((c) => c.name));
  const source =
    bytes.size === 0
      ? `${quote(table.name)} t`
      : `(select ${names
          .map((c) =>
            bytes.has(c) ? `translate(encode(${quote(c)}, 'base64'), e'\\n', '') as ${quote(c)}` : quote(c),
          )
          .join(', ')} from ${quote(table.name)}) t`;
  const statement =
    `copy (select ${line} from ${source} order by ${order}) ` +
    `to stdout (format csv, delimiter e'\\x01', quote e'\\x02', escape e'\\x02')`;
  const encode = floats.length > 0 ? lineEncoder(names) : undefined;
  const stream = client.query(copyTo(statement));
  let parts: Buffer[] = [];
  let size = 0;
  const finish = (): Buffer => {
    const block = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
    parts = [];
    size = 0;
    if (block[0] === lineFeed || block.includes('\n\n')) {
      throw unsupportedValue(
        table.name,
        [...bigints, ...floats].join('/'),
        'an integer beyond ±2^53 or a non-finite real',
      );
    }
    return encode && foreignNumber.test(block.toString('latin1')) ? respell(block, encode) : block;
  };
  try {
    for await (const data of stream as AsyncIterable<Buffer>) {
      parts.push(data);
      size += data.length;
      // Every CopyData message is one whole row, so the blocks end at line ends.
      if (size >= blockBytes && data[data.length - 1] === lineFeed) yield finish();
    }
    if (size > 0) {
      if (parts.at(-1)?.at(-1) !== lineFeed)
        throw new AthanorError('internal', `COPY of ${table.name} ended inside a line`);
      yield finish();
    }
  } finally {
    stream.destroy();
  }
}

/** The block with every line that holds a number in PostgreSQL's spelling encoded the JavaScript way. */
function respell(block: Buffer, encode: (row: Row) => string): Buffer {
  const lines = block.toString('utf8').split('\n');
  lines.pop();
  let text = '';
  for (const line of lines) text += `${foreignNumber.test(line) ? encode(JSON.parse(line) as Row) : line}\n`;
  return Buffer.from(text);
}

/**
 * Moves every identity and serial sequence past the largest value restored into its column, so the
 * next insert does not collide with a restored row.
 */
export async function resetPostgresSequences(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and (is_identity = 'YES' or column_default like 'nextval(%')`.execute(
    db,
  );
  for (const { table_name: table, column_name: column } of rows) {
    await sql`select setval(
        pg_get_serial_sequence(${quote(table)}, ${column}),
        coalesce((select max(${sql.id(column)}) from ${sql.id(table)}), 0) + 1,
        false)`.execute(db);
  }
}

/** Drops every table of the current schema, inside the caller's transaction. */
export async function dropPostgresTables(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ tablename: string }>`
    select tablename from pg_tables where schemaname = current_schema()`.execute(db);
  if (rows.length === 0) return;
  await sql`drop table if exists ${sql.join(rows.map((r) => sql.id(r.tablename)))} cascade`.execute(db);
}

/** Names of the tables in the current schema, sorted. */
export async function listPostgresTables(db: Kysely<unknown>): Promise<string[]> {
  const { rows } = await sql<{ tablename: string }>`
    select tablename from pg_tables where schemaname = current_schema() order by tablename`.execute(db);
  return rows.map((r) => r.tablename);
}

/**
 * Drops the foreign keys of the current schema inside the caller's transaction and returns the
 * function that adds them back, checking every loaded row. PostgreSQL checks a non-deferrable key
 * per row, and a table that references itself (a task extending a task) need not come in an order
 * that satisfies it; this is how pg_restore loads data too.
 */
export async function suspendPostgresForeignKeys(db: Kysely<unknown>): Promise<() => Promise<void>> {
  const { rows } = await sql<{ table: string; name: string; definition: string }>`
    select t.relname as table, c.conname as name, pg_get_constraintdef(c.oid) as definition
    from pg_constraint c join pg_class t on t.oid = c.conrelid
    where c.contype = 'f' and c.connamespace = current_schema()::regnamespace
    order by t.relname, c.conname`.execute(db);
  for (const fk of rows) {
    await sql`alter table ${sql.id(fk.table)} drop constraint ${sql.id(fk.name)}`.execute(db);
  }
  return async () => {
    for (const fk of rows) {
      await sql`alter table ${sql.id(fk.table)} add constraint ${sql.id(fk.name)} ${sql.raw(fk.definition)}`.execute(
        db,
      );
    }
  };
}

/**
 * Drops the primary keys, unique constraints and indexes of the current schema inside the
 * caller's transaction (after its foreign keys) and returns the function that builds them again
 * once the rows are in: one sort per index instead of an index update per row, as pg_restore
 * loads data. Run the returned function before the foreign keys come back; they need the keys.
 */
export async function suspendPostgresIndexes(db: Kysely<unknown>): Promise<() => Promise<void>> {
  const constraints = await sql<{ table: string; name: string; definition: string }>`
    select t.relname as table, c.conname as name, pg_get_constraintdef(c.oid) as definition
    from pg_constraint c join pg_class t on t.oid = c.conrelid
    where c.contype in ('p', 'u') and c.connamespace = current_schema()::regnamespace
    order by t.relname, c.conname`.execute(db);
  const indexes = await sql<{ name: string; definition: string }>`
    select i.relname as name, pg_get_indexdef(x.indexrelid) as definition
    from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
    where t.relnamespace = current_schema()::regnamespace
      and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)
    order by i.relname`.execute(db);
  for (const c of constraints.rows) {
    await sql`alter table ${sql.id(c.table)} drop constraint ${sql.id(c.name)}`.execute(db);
  }
  for (const index of indexes.rows) await sql`drop index ${sql.id(index.name)}`.execute(db);
  return async () => {
    for (const c of constraints.rows) {
      await sql`alter table ${sql.id(c.table)} add constraint ${sql.id(c.name)} ${sql.raw(c.definition)}`.execute(
        db,
      );
    }
    for (const index of indexes.rows) await sql.raw(index.definition).execute(db);
  };
}

/** Writes rows into one table as they come, inside the restore's transaction. */
export interface TableLoader {
  write(rows: readonly LoadRow[]): Promise<void>;
  /** Waits until every row written is in the table. */
  end(): Promise<void>;
}

/** COPY text spelling of one value: `\N` for null, backslash escapes for the bytes COPY treats specially. */
function copyValue(value: RowValue | Buffer | undefined): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'number') return String(value);
  // bytea's hex input form, its backslash doubled for the COPY text format.
  if (Buffer.isBuffer(value)) return `\\\\x${value.toString('hex')}`;
  return /[\\\n\r\t]/.test(value) ? value.replace(/[\\\n\r\t]/g, copyEscape) : value;
}
const copyEscape = (c: string) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t');

/**
 * Loads a table with one `COPY … FROM STDIN` (text format), as pg_restore does: the rows stream to
 * the server as they are written, and PostgreSQL parses them into the column types itself.
 */
export function postgresTableLoader(
  db: Kysely<unknown>,
  table: string,
  columns: readonly string[],
): TableLoader {
  const stream = new PassThrough();
  // A failed COPY destroys the stream; its error reaches the caller through `copied`.
  stream.on('error', () => {});
  const copied = copyIntoPostgres(db, table, columns, stream);
  // Until `end` awaits it, a failed COPY must not be an unhandled rejection.
  copied.catch(() => {});
  return {
    async write(rows) {
      let text = '';
      for (const row of rows) {
        let line = '';
        for (let i = 0; i < columns.length; i++) {
          line += (i === 0 ? '' : '\t') + copyValue(row[columns[i] as string]);
        }
        text += `${line}\n`;
      }
      if (stream.destroyed) await copied;
      if (!stream.write(text)) await Promise.race([once(stream, 'drain'), copied]);
    },
    async end() {
      stream.end();
      await copied;
    },
  };
}
