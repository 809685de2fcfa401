export { createPostgresKysely, createPostgresPool, postgresBackend } from './postgres.js';
export { createSqliteKysely, openSqliteDatabase, sqliteBackend } from './sqlite.js';
