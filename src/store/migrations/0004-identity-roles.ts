import { sql } from 'kysely';
import type { Migration } from './migration.js';

/**
 * Roles of identities, one row per role held. `admin` opens the console's operator pages; a
 * table rather than a column so more roles need no migration and a removed identity loses its
 * roles with its scopes.
 */
export const migration0004: Migration = {
  id: 4,
  name: 'identity-roles',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('identity_roles')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin')`))
      .addColumn('granted_at', 'text', (c) => c.notNull())
      .addColumn('granted_by', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('identity_roles_pk', ['kind', 'identifier', 'role'])
      .addForeignKeyConstraint(
        'identity_roles_identity_fk',
        ['kind', 'identifier'],
        'identities',
        ['kind', 'identifier'],
        (c) => c.onDelete('cascade'),
      )
      .execute();
  },
};
