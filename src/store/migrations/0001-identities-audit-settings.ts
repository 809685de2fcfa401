import { sql } from 'kysely';
import type { Migration } from './migration.js';

export const migration0001: Migration = {
  id: 1,
  name: 'identities-audit-settings',
  breaking: false,
  async up(db, helpers) {
    await db.schema
      .createTable('identities')
      .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('user', 'compute')`))
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('key_hash', 'text', (c) => c.notNull())
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('expires_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('credentials_changed_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('identities_pk', ['kind', 'identifier'])
      .execute();

    await db.schema
      .createTable('identity_scopes')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('identity_scopes_pk', ['kind', 'identifier', 'scope'])
      .addForeignKeyConstraint(
        'identity_scopes_identity_fk',
        ['kind', 'identifier'],
        'identities',
        ['kind', 'identifier'],
        (c) => c.onDelete('cascade'),
      )
      .execute();

    await helpers
      .autoIncrementId(db.schema.createTable('audit_log'), 'id')
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('ok', 'error')`))
      .addColumn('details', 'text')
      .execute();
    await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();

    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
};
