import { sql } from 'kysely';
import type { Migration } from './migration.js';

/** The queue: networks, transformations, tasks, hubs, restart policies, compute services, results. */
export const migration0002: Migration = {
  id: 2,
  name: 'queue',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('networks')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) =>
        c.notNull().check(sql`state in ('active', 'inactive', 'invalid', 'deleted')`),
      )
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('networks_scope').on('networks').columns(['scope', 'key']).execute();

    await db.schema
      .createTable('transformations')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('protocol', 'text', (c) => c.notNull())
      .addColumn('inputs', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('transformations_scope')
      .on('transformations')
      .columns(['scope', 'key'])
      .execute();

    await db.schema
      .createTable('network_transformations')
      .addColumn('network_key', 'text', (c) => c.notNull().references('networks.key').onDelete('cascade'))
      .addColumn('transformation_key', 'text', (c) => c.notNull().references('transformations.key'))
      .addPrimaryKeyConstraint('network_transformations_pk', ['network_key', 'transformation_key'])
      .execute();
    await db.schema
      .createIndex('network_transformations_transformation')
      .on('network_transformations')
      .column('transformation_key')
      .execute();

    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('transformation_key', 'text', (c) => c.notNull().references('transformations.key'))
      .addColumn('extends_task_id', 'text', (c) => c.references('tasks.id'))
      .addColumn('status', 'text', (c) =>
        c.notNull().check(sql`status in ('waiting', 'running', 'complete', 'error', 'invalid', 'deleted')`),
      )
      .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(10))
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('restarts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('lease_service_id', 'text')
      .addColumn('lease_token', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('lease_expires_at', 'text')
      .addColumn('last_error', 'text')
      .execute();
    await db.schema.createIndex('tasks_scope_status').on('tasks').columns(['scope', 'status']).execute();
    await db.schema.createIndex('tasks_transformation').on('tasks').column('transformation_key').execute();
    await db.schema.createIndex('tasks_extends').on('tasks').column('extends_task_id').execute();
    // Partial indexes keep claims and lease sweeps proportional to live work, not to history.
    await db.schema
      .createIndex('tasks_waiting')
      .on('tasks')
      .columns(['priority', 'id'])
      .where(sql.ref('status'), '=', 'waiting')
      .execute();
    await db.schema
      .createIndex('tasks_running_lease')
      .on('tasks')
      .column('lease_expires_at')
      .where(sql.ref('status'), '=', 'running')
      .execute();

    await db.schema
      .createTable('hubs')
      .addColumn('network_key', 'text', (c) => c.primaryKey().references('networks.key').onDelete('cascade'))
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('weight', 'double precision', (c) => c.notNull().defaultTo(0.5))
      .execute();

    await db.schema
      .createTable('hub_tasks')
      .addColumn('network_key', 'text', (c) => c.notNull().references('hubs.network_key').onDelete('cascade'))
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
      .addColumn('weight', 'double precision', (c) => c.notNull().defaultTo(0.5))
      .addColumn('actioned_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('hub_tasks_pk', ['network_key', 'task_id'])
      .execute();
    await db.schema.createIndex('hub_tasks_task').on('hub_tasks').column('task_id').execute();

    await db.schema
      .createTable('restart_policies')
      .addColumn('network_key', 'text', (c) => c.notNull().references('networks.key').onDelete('cascade'))
      .addColumn('pattern', 'text', (c) => c.notNull())
      .addColumn('max_retries', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('restart_policies_pk', ['network_key', 'pattern'])
      .execute();

    await db.schema
      .createTable('compute_services')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hostname', 'text')
      .addColumn('state', 'text', (c) =>
        c.notNull().check(sql`state in ('active', 'deregistered', 'expired')`),
      )
      .addColumn('registered_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('compute_services_state')
      .on('compute_services')
      .columns(['state', 'expires_at'])
      .execute();

    await db.schema
      .createTable('results')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id'))
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('lease_token', 'integer', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('ok', 'failed')`))
      .addColumn('blob_sha256', 'text')
      .addColumn('size_bytes', 'integer')
      .addColumn('error', 'text')
      .addColumn('compute_service_id', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('results_task').on('results').column('task_id').execute();
  },
};
