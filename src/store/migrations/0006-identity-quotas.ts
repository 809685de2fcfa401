import { sql } from 'kysely';
import type { Migration } from './migration.js';

/**
 * Per-identity quotas, one row per identity that has any; a null limit is no limit, and an
 * identity without a row has none (quotas are off by default). Partial indexes let the checks
 * count an identity's waiting tasks and live networks without reading its history.
 */
export const migration0006: Migration = {
  id: 6,
  name: 'identity-quotas',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('identity_quotas')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('max_waiting_tasks', 'integer', (c) => c.check(sql`max_waiting_tasks >= 0`))
      .addColumn('max_networks', 'integer', (c) => c.check(sql`max_networks >= 0`))
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('identity_quotas_pk', ['kind', 'identifier'])
      .addForeignKeyConstraint(
        'identity_quotas_identity_fk',
        ['kind', 'identifier'],
        'identities',
        ['kind', 'identifier'],
        (c) => c.onDelete('cascade'),
      )
      .execute();
    await db.schema
      .createIndex('tasks_waiting_created_by')
      .on('tasks')
      .column('created_by')
      .where(sql.ref('status'), '=', 'waiting')
      .execute();
    await db.schema
      .createIndex('networks_live_created_by')
      .on('networks')
      .column('created_by')
      .where(sql.ref('state'), '<>', 'deleted')
      .execute();
  },
};
