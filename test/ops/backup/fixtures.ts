import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Config } from '../../../src/config/resolve-config.js';
import type { ObjectStore } from '../../../src/objects/object-store.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { migrations as releaseMigrations } from '../../../src/store/migrations/index.js';
import type { Migration } from '../../../src/store/migrations/migration.js';
import type { Store } from '../../../src/store/open-store.js';
import { testConfig } from '../../helpers/backends.js';

type AnyTables = Record<string, Record<string, unknown>>;

/** A table with every column type a backup carries, a composite key and a key referencing itself. */
export const kitchenSinkMigration: Migration = {
  id: 900,
  name: 'backup-kitchen-sink',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('kitchen_sink')
      .addColumn('part', 'text', (c) => c.notNull())
      .addColumn('n', 'integer', (c) => c.notNull())
      .addColumn('big', 'bigint')
      .addColumn('ratio', 'real')
      .addColumn('precise', 'double precision')
      .addColumn('label', 'text')
      .addColumn('parent_part', 'text')
      .addColumn('parent_n', 'integer')
      .addPrimaryKeyConstraint('kitchen_sink_pk', ['part', 'n'])
      .addForeignKeyConstraint('kitchen_sink_parent_fk', ['parent_part', 'parent_n'], 'kitchen_sink', [
        'part',
        'n',
      ])
      .execute();
  },
};

export const migrationsWithKitchenSink: readonly Migration[] = [...releaseMigrations, kitchenSinkMigration];

const awkwardText = [
  'plain',
  'héllo wörld',
  '🧪 emoji',
  'quote " and \\ backslash',
  'line\nbreak\r\nand\ttab',
  'separator \u2028 \u2029',
  '',
  '{"looks":"like json"}',
];

/** Fills the release's tables (and kitchen_sink when present) with awkward but legal values. */
export async function populate(
  store: Store,
  options: { rows?: number; kitchenSink?: boolean } = {},
): Promise<void> {
  const rows = options.rows ?? 50;
  const now = new Date('2026-01-02T03:04:05.678Z').toISOString();
  await store.transaction(async (trx) => {
    const t = trx as unknown as Kysely<AnyTables>;
    for (let i = 0; i < rows; i++) {
      const identifier = `${['Alice', 'bob', 'Émile', 'zed', '_x'][i % 5]}${i}`;
      await t
        .insertInto('identities')
        .values({
          kind: i % 3 === 0 ? 'compute' : 'user',
          identifier,
          key_hash: `$argon2id$v=19$m=19456,t=2,p=1$${randomBytes(8).toString('base64')}`,
          disabled: i % 7 === 0 ? 1 : 0,
          expires_at: i % 4 === 0 ? null : now,
          created_at: now,
          updated_at: now,
          credentials_changed_at: now,
        })
        .execute();
      await t
        .insertInto('identity_scopes')
        .values({
          kind: i % 3 === 0 ? 'compute' : 'user',
          identifier,
          scope: `org${i}-camp-*`,
          created_at: now,
        })
        .execute();
      await t
        .insertInto('audit_log')
        .values({
          at: now,
          actor: 'test@host',
          action: 'identity.add',
          target: awkwardText[i % awkwardText.length] ?? null,
          outcome: 'ok',
          details: i % 2 ? null : JSON.stringify({ i }),
        })
        .execute();
    }
    for (const [i, value] of awkwardText.entries()) {
      await t
        .insertInto('settings')
        .values({ key: `k${i}`, value, updated_at: now })
        .execute();
    }
    if (options.kitchenSink) {
      const parts = ['B', 'a', 'é', 'Z', 'a b', 'ab'];
      for (let i = 0; i < rows; i++) {
        const part = parts[i % parts.length] as string;
        await t
          .insertInto('kitchen_sink')
          .values({
            part,
            n: i,
            big:
              i % 3 === 0 ? Number.MAX_SAFE_INTEGER - i : i % 3 === 1 ? -Number.MAX_SAFE_INTEGER + i : null,
            ratio: [0.5, -1.25, 3, null, 1024.125][i % 5] ?? null,
            // Numbers PostgreSQL and JavaScript spell differently: exponents either side, and -0.
            precise:
              [1 / 3, 1e300, -2.5e-300, Math.PI, null, 1e-5, 1e20, -0, 123456789012345680][i % 9] ?? null,
            label: awkwardText[i % awkwardText.length] ?? null,
            parent_part: null,
            parent_n: null,
          })
          .execute();
      }
      // Each row references a later row: a load in key order would break an immediate foreign key.
      for (let i = 0; i + 1 < rows; i++) {
        await t
          .updateTable('kitchen_sink')
          .set({ parent_part: parts[(i + 1) % parts.length] as string, parent_n: i + 1 })
          .where('n', '=', i)
          .execute();
      }
    }
  });
}

/** Every row of every table, keyed by table, each table's rows in a canonical order. */
export async function dumpDatabase(store: Store): Promise<Record<string, unknown[]>> {
  const tables = (await store.db.introspection.getTables()).map((t) => t.name).sort();
  const dump: Record<string, unknown[]> = {};
  const db = store.db as unknown as Kysely<AnyTables>;
  for (const table of tables) {
    const rows = await db.selectFrom(table).selectAll().execute();
    dump[table] = rows
      .map((row) =>
        JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => a.localeCompare(b)))),
      )
      .sort()
      .map((text) => JSON.parse(text) as unknown);
  }
  return dump;
}

export function withoutAudit(dump: Record<string, unknown[]>, action: string): Record<string, unknown[]> {
  return {
    ...dump,
    audit_log: (dump.audit_log ?? []).filter((row) => (row as { action: string }).action !== action),
  };
}

/** A fresh, empty file: target under `dir`. */
export function freshTarget(dir: string): ObjectStore {
  return openObjectStore(`file:${path.join(dir, `target-${randomBytes(4).toString('hex')}`)}`);
}

export function configFor(url: string, dir: string): Config {
  return testConfig(url, dir);
}

export async function rowCount(store: Store, table: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*) as n from ${sql.id(table)}`.execute(store.db);
  return Number(rows[0]?.n ?? 0);
}

/** Adds `rows` audit entries of about 300 bytes each, in batches: a database worth a few seconds of backup. */
export async function fillAuditLog(store: Store, rows: number): Promise<void> {
  const filler = 'x'.repeat(200);
  for (let start = 0; start < rows; start += 500) {
    const batch = Array.from({ length: Math.min(500, rows - start) }, (_, i) => ({
      at: new Date(Date.UTC(2026, 0, 1) + (start + i) * 1000).toISOString(),
      actor: 'filler@host',
      action: 'test.fill',
      target: `row ${start + i}`,
      outcome: 'ok' as const,
      details: JSON.stringify({ n: start + i, filler }),
    }));
    await store.db.insertInto('audit_log').values(batch).execute();
  }
}
