import { sql } from 'kysely';
import type { Migration } from './migration.js';

/**
 * Attempt history: one row per claim of a task, opened in the claim's transaction and closed in
 * the one that ends it. Tasks gain when their status last changed and the reason a user gave.
 */
export const migration0005: Migration = {
  id: 5,
  name: 'task-attempts',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('task_attempts')
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id'))
      // The claim's fencing token: it grows at every claim, so it orders a task's attempts.
      .addColumn('lease_token', 'integer', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('compute_identity', 'text', (c) => c.notNull())
      .addColumn('compute_service_id', 'text', (c) => c.notNull())
      .addColumn('hostname', 'text')
      .addColumn('claimed_at', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'text')
      .addColumn('outcome', 'text', (c) =>
        c.check(sql`outcome in ('ok', 'failed', 'released', 'expired', 'revoked')`),
      )
      .addColumn('result_id', 'text', (c) => c.references('results.id'))
      .addColumn('reason', 'text')
      .addPrimaryKeyConstraint('task_attempts_pk', ['task_id', 'lease_token'])
      .execute();
    await db.schema
      .createIndex('task_attempts_failed')
      .on('task_attempts')
      .columns(['scope', 'task_id', 'lease_token'])
      .where(sql.ref('outcome'), '=', 'failed')
      .execute();

    await db.schema.alterTable('tasks').addColumn('status_changed_at', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('status_reason', 'text').execute();
    await sql`update tasks set status_changed_at = updated_at`.execute(db);
  },
};
