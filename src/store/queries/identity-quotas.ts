import type { Kysely, Selectable } from 'kysely';
import type { IdentityKind } from '../../domain/identifier.js';
import type { Database, IdentityQuotasTable } from '../schema.js';

export type QuotaRow = Selectable<IdentityQuotasTable>;

export async function findQuota(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<QuotaRow | undefined> {
  return db
    .selectFrom('identity_quotas')
    .selectAll()
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .executeTakeFirst();
}

/** Quotas of every identity that has one, keyed `kind:identifier`. */
export async function listQuotasByIdentity(db: Kysely<Database>): Promise<Map<string, QuotaRow>> {
  const rows = await db.selectFrom('identity_quotas').selectAll().execute();
  return new Map(rows.map((row) => [`${row.kind}:${row.identifier}`, row]));
}

export async function upsertQuota(db: Kysely<Database>, row: QuotaRow): Promise<void> {
  await db
    .insertInto('identity_quotas')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['kind', 'identifier']).doUpdateSet({
        max_waiting_tasks: row.max_waiting_tasks,
        max_networks: row.max_networks,
        updated_at: row.updated_at,
        updated_by: row.updated_by,
      }),
    )
    .execute();
}

export async function deleteQuota(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<void> {
  await db
    .deleteFrom('identity_quotas')
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .execute();
}

/**
 * Reads an identity's quota row and, on PostgreSQL, holds it until the transaction ends: the
 * update is a no-op that takes the row lock, so two creations by one identity check their quota
 * one after the other instead of both seeing room for one more. (SQLite has one writer anyway.)
 */
export async function lockQuota(
  db: Kysely<Database>,
  kind: IdentityKind,
  identifier: string,
): Promise<QuotaRow | undefined> {
  return db
    .updateTable('identity_quotas')
    .set((eb) => ({ updated_at: eb.ref('updated_at') }))
    .where('kind', '=', kind)
    .where('identifier', '=', identifier)
    .returningAll()
    .executeTakeFirst();
}

/** Tasks `createdBy` (`kind:identifier`) made that are waiting. */
export async function countWaitingTasksCreatedBy(db: Kysely<Database>, createdBy: string): Promise<number> {
  const row = await db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('created_by', '=', createdBy)
    .where('status', '=', 'waiting')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Networks `createdBy` submitted that are not deleted. */
export async function countLiveNetworksCreatedBy(db: Kysely<Database>, createdBy: string): Promise<number> {
  const row = await db
    .selectFrom('networks')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('created_by', '=', createdBy)
    .where('state', '<>', 'deleted')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
