import type { Migration } from './migration.js';

/**
 * Attempt logs and live progress: an attempt gains the blob of its log (set once, by the compute
 * identity that held it); a task gains the progress its current lease last reported.
 */
export const migration0007: Migration = {
  id: 7,
  name: 'attempt-logs-progress',
  breaking: false,
  async up(db) {
    await db.schema.alterTable('task_attempts').addColumn('log_sha256', 'text').execute();
    await db.schema.alterTable('task_attempts').addColumn('log_size_bytes', 'integer').execute();
    await db.schema.alterTable('tasks').addColumn('progress_fraction', 'double precision').execute();
    await db.schema.alterTable('tasks').addColumn('progress_message', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('progress_at', 'text').execute();
  },
};
