export { createPostgresKysely, createPostgresPool, postgresBackend } from './postgres.js';
export {
  checkpointInBackground,
  createSqliteKysely,
  openSqliteDatabase,
  sqliteBackend,
  sqliteUnavailable,
} from './sqlite.js';
