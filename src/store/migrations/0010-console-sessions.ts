import type { Migration } from './migration.js';

/**
 * Console sessions kept by the server, so that signing out (or an operator's disable, key change
 * or role withdrawal) ends a session at once on every replica. The cookie carries a random
 * value; a row holds only its SHA-256, the user it signs in, and the user's credentials stamp at
 * sign-in (a later change of the stamp ends the session).
 */
export const migration0010: Migration = {
  id: 10,
  name: 'console-sessions',
  breaking: false,
  async up(db) {
    await db.schema
      .createTable('console_sessions')
      .addColumn('token_sha256', 'text', (c) => c.primaryKey())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('credentials_stamp', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('console_sessions_expires_at')
      .on('console_sessions')
      .column('expires_at')
      .execute();
  },
};
