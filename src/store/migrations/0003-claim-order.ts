import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Migration } from './migration.js';

/**
 * Claim order kept in an index (and an index of result blobs, for the object store's garbage
 * collector): each hub entry carries its task's priority and a weighted random
 * key drawn once, so a claim reads the first few entries of `hub_tasks_claim` instead of sorting
 * every waiting task of the hub.
 */
export const migration0003: Migration = {
  id: 3,
  name: 'claim-order',
  breaking: false,
  async up(db) {
    await db.schema
      .alterTable('hub_tasks')
      .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(10))
      .execute();
    await db.schema
      .alterTable('hub_tasks')
      .addColumn('claim_key', 'double precision', (c) => c.notNull().defaultTo(0))
      .execute();
    await sql`update hub_tasks set priority = (select t.priority from tasks t where t.id = hub_tasks.task_id)`.execute(
      db,
    );
    await drawKeysForExistingEntries(db);
    await db.schema
      .createIndex('hub_tasks_claim')
      .on('hub_tasks')
      .columns(['network_key', 'priority', 'claim_key'])
      .execute();
    // The object store's garbage collector asks which blobs results still reference.
    await db.schema.createIndex('results_blob').on('results').column('blob_sha256').execute();
  },
};

/**
 * Existing entries get their keys drawn here, page by page (the draw happens in JavaScript). The
 * formula is the claim key at offset 0, `Exp(weight)`, copied here rather than imported: a
 * migration is frozen in time, and these per-row updates are not in its checksum (the recorder
 * that computes it sees no rows), so a later change to the claim key must not change what this does.
 */
async function drawKeysForExistingEntries(db: Kysely<unknown>): Promise<void> {
  let after = { network_key: '', task_id: '' };
  for (;;) {
    const { rows } = await sql<{ network_key: string; task_id: string; weight: number }>`
      select network_key, task_id, weight from hub_tasks
      where network_key > ${after.network_key}
         or (network_key = ${after.network_key} and task_id > ${after.task_id})
      order by network_key, task_id
      limit 1000`.execute(db);
    for (const row of rows) {
      const key = row.weight > 0 ? -Math.log(1 - Math.random()) / row.weight : 0;
      await sql`update hub_tasks set claim_key = ${key}
        where network_key = ${row.network_key} and task_id = ${row.task_id}`.execute(db);
    }
    const last = rows.at(-1);
    if (!last || rows.length < 1000) return;
    after = last;
  }
}
