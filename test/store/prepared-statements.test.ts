import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { preparedMarker } from '../../src/store/backend.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { freshStore } from '../helpers/store.js';

describeEachBackend('prepared statements', (backend) => {
  const dir = tempDir();

  it('runs a marked statement again from its preparation, and again after its table changed shape', async () => {
    const { store } = await freshStore(backend, dir, { migrated: false });
    await sql`create table probe (id text primary key, n integer not null)`.execute(store.db);
    await sql`insert into probe (id, n) values ('a', 1), ('b', 2)`.execute(store.db);
    await store.db.connection().execute(async (conn) => {
      const read = (id: string) =>
        sql<Record<string, unknown>>`${sql.raw(preparedMarker)} select * from probe where id = ${id}`.execute(
          conn,
        );
      expect((await read('a')).rows).toEqual([{ id: 'a', n: 1 }]);
      expect((await read('b')).rows).toEqual([{ id: 'b', n: 2 }]);
      if (backend === 'postgres') {
        const { rows } = await sql<{ name: string }>`select name from pg_prepared_statements`.execute(conn);
        expect(rows.filter((r) => r.name.startsWith('athanor_'))).toHaveLength(1);
      }
      if (backend === 'postgres') {
        // Every run is planned with its own parameters, never one generic plan fixed with the
        // statistics of its sixth run (which go stale after a bulk submission).
        for (let i = 0; i < 10; i++) await read(i % 2 ? 'a' : 'b');
        const { rows } = await sql<{ generic: number; custom: number }>`
          select generic_plans as generic, custom_plans as custom from pg_prepared_statements
          where name like 'athanor_%'`.execute(conn);
        expect(rows).toEqual([{ generic: 0, custom: 12 }]);
      }
      // A migration adds a column: PostgreSQL refuses the old preparation, which is made again.
      await sql`alter table probe add column extra text`.execute(conn);
      expect((await read('a')).rows).toEqual([{ id: 'a', n: 1, extra: null }]);
    });
  });
});
