import { sql } from 'kysely';
import type { Migration } from './migration.js';

/**
 * Compute managers: a registration per manager (its scopes, limits, the operator's pause and cap,
 * its last decision), and on each compute service the manager and launch that started it plus
 * the drain flag its next heartbeat answer carries.
 */
export const migration0011: Migration = {
  id: 11,
  name: 'compute-managers',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('compute_managers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hostname', 'text')
      .addColumn('driver', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('min_services', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('max_services', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('active', 'stopped', 'expired')`))
      .addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('cap', 'integer')
      .addColumn('stop_requested', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('registered_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('status', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    // A manager restarted under the same name takes its registration (and its services) back.
    await db.schema
      .createIndex('compute_managers_name')
      .on('compute_managers')
      .columns(['identifier', 'name'])
      .unique()
      .execute();
    await db.schema
      .createIndex('compute_managers_state')
      .on('compute_managers')
      .columns(['state', 'expires_at'])
      .execute();
    await db.schema.alterTable('compute_services').addColumn('manager_id', 'text').execute();
    await db.schema.alterTable('compute_services').addColumn('launch_id', 'text').execute();
    await db.schema
      .alterTable('compute_services')
      .addColumn('drain', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createIndex('compute_services_manager')
      .on('compute_services')
      .columns(['manager_id', 'state'])
      .execute();
  },
};
