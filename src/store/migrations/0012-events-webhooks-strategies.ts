import { sql } from 'kysely';
import type { Migration } from './migration.js';

/**
 * The event log, webhook endpoints with their delivery log, and network strategies.
 *
 * An event is written with the state change it describes, in the same transaction, without a
 * position; one sequencer (a leader among replicas) then numbers committed events in the order it
 * finds them. Readers only see numbered events and page by position, so a transaction that
 * commits late can never slip an event in behind a reader's cursor.
 */
export const migration0012: Migration = {
  id: 12,
  name: 'events-webhooks-strategies',
  breaking: false,
  async up(db, helpers) {
    await helpers
      .autoIncrementId(db.schema.createTable('events'), 'id')
      .addColumn('position', 'integer')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('network_key', 'text')
      .addColumn('subject', 'text')
      .addColumn('data', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('events_position').unique().on('events').column('position').execute();
    await db.schema
      .createIndex('events_unsequenced')
      .on('events')
      .column('id')
      .where(sql.ref('position'), 'is', null)
      .execute();

    await db.schema
      .createTable('webhook_endpoints')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('event_types', 'text', (c) => c.notNull())
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('active', 'disabled')`))
      .addColumn('disabled_reason', 'text')
      .addColumn('delivered_position', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('failing_since', 'text')
      .addColumn('next_attempt_at', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await helpers
      .autoIncrementId(db.schema.createTable('webhook_deliveries'), 'id')
      .addColumn('endpoint_id', 'text', (c) =>
        c.notNull().references('webhook_endpoints.id').onDelete('cascade'),
      )
      .addColumn('event_position', 'integer')
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('ok', 'failed')`))
      .addColumn('status_code', 'integer')
      .addColumn('error', 'text')
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('webhook_deliveries_endpoint')
      .on('webhook_deliveries')
      .columns(['endpoint_id', 'id'])
      .execute();

    await db.schema
      .createTable('network_strategies')
      .addColumn('network_key', 'text', (c) => c.primaryKey().references('networks.key').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('active', 'stopped')`))
      .addColumn('last_error', 'text')
      .addColumn('last_run_at', 'text')
      .addColumn('runs', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
};
