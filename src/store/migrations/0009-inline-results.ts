import type { Migration } from './migration.js';

/**
 * Small results stored in their row: a result gains the column that holds its bytes, its digest
 * and length kept beside them. Breaking: an older release reads every result's bytes from the
 * object store, where an inline result has none, so it must not run against a database that
 * holds them.
 */
export const migration0009: Migration = {
  id: 9,
  name: 'inline-results',
  breaking: true,
  async up(db, helpers) {
    await db.schema.alterTable('results').addColumn('body', helpers.binaryType).execute();
  },
};
