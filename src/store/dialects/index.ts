export { createPostgresKysely, createPostgresPool, postgresBackend } from './postgres.js';
export { createSqliteKysely, openSqliteDatabase, sqliteBackend, sqliteUnavailable } from './sqlite.js';
