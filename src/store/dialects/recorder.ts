import type { DatabaseConnection, Dialect, Driver, QueryResult } from 'kysely';
import { Kysely } from 'kysely';

/** A Kysely dialect whose driver runs nothing and records each statement with its parameters. */
export function recordingKysely(
  base: Pick<Dialect, 'createAdapter' | 'createQueryCompiler' | 'createIntrospector'>,
): { db: Kysely<unknown>; statements: string[] } {
  const statements: string[] = [];
  const connection: DatabaseConnection = {
    async executeQuery<R>(query: { sql: string; parameters: readonly unknown[] }): Promise<QueryResult<R>> {
      statements.push(
        query.parameters.length ? `${query.sql} -- ${JSON.stringify(query.parameters)}` : query.sql,
      );
      return { rows: [] };
    },
    // eslint-disable-next-line require-yield
    async *streamQuery() {
      return;
    },
  };
  const driver: Driver = {
    async init() {},
    async acquireConnection() {
      return connection;
    },
    async beginTransaction() {},
    async commitTransaction() {},
    async rollbackTransaction() {},
    async releaseConnection() {},
    async destroy() {},
  };
  const db = new Kysely<unknown>({
    dialect: {
      createAdapter: () => base.createAdapter(),
      createDriver: () => driver,
      createIntrospector: (k) => base.createIntrospector(k),
      createQueryCompiler: () => base.createQueryCompiler(),
    },
  });
  return { db, statements };
}
