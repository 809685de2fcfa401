import type { Insertable, Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { AuditLogTable, Database } from '../schema.js';

export type AuditRow = Selectable<AuditLogTable>;

export async function insertAuditEntry(
  db: Kysely<Database>,
  entry: Insertable<AuditLogTable>,
): Promise<void> {
  await db.insertInto('audit_log').values(entry).execute();
}

export async function listAuditEntries(
  db: Kysely<Database>,
  filter: {
    since?: string | undefined;
    until?: string | undefined;
    action?: string | undefined;
    actor?: string | undefined;
    limit: number;
  },
): Promise<AuditRow[]> {
  let query = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(filter.limit);
  if (filter.since) query = query.where('at', '>=', filter.since);
  if (filter.until) query = query.where('at', '<', filter.until);
  if (filter.actor) query = query.where('actor', '=', filter.actor);
  // A plain prefix comparison: LIKE would read '%' and '_' as wildcards and fold case on SQLite.
  const prefix = filter.action;
  if (prefix) query = query.where(sql<boolean>`substr(action, 1, ${sql.lit(prefix.length)}) = ${prefix}`);
  const rows = await query.execute();
  return rows.reverse();
}

/** Every distinct action the log holds. */
export async function listAuditActions(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('audit_log').select('action').distinct().execute();
  return rows.map((r) => r.action);
}
