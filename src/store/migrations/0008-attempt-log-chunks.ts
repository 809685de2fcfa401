import type { Migration } from './migration.js';

/**
 * Live attempt logs: what a running attempt's log gained, appended on its lease's heartbeats, one
 * row per append at its byte offset. The log uploaded when the attempt ends replaces them.
 */
export const migration0008: Migration = {
  id: 8,
  name: 'attempt-log-chunks',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('attempt_log_chunks')
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('lease_token', 'integer', (c) => c.notNull())
      .addColumn('offset_bytes', 'integer', (c) => c.notNull())
      .addColumn('size_bytes', 'integer', (c) => c.notNull())
      .addColumn('text', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('attempt_log_chunks_pk', ['task_id', 'lease_token', 'offset_bytes'])
      .addForeignKeyConstraint('attempt_log_chunks_attempt_fk', ['task_id', 'lease_token'], 'task_attempts', [
        'task_id',
        'lease_token',
      ])
      .execute();
  },
};
