import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { postgresAdminUrl, tempDir } from '../helpers/backends.js';
import { freshStore } from '../helpers/store.js';

// SQLite write transactions take the whole database's lock first, so only PostgreSQL deadlocks.
describe.runIf(postgresAdminUrl() !== '')('write transactions [postgres]', () => {
  const dir = tempDir();

  it('run again when PostgreSQL picks them to break a deadlock, so both writers succeed', async () => {
    const { store } = await freshStore('postgres', dir);
    await sql`create table probe (id integer primary key, n integer not null)`.execute(store.db);
    await sql`insert into probe values (1, 0), (2, 0)`.execute(store.db);

    // Each writer locks its first row, waits until the other holds its own, then asks for it.
    let holding = 0;
    let bothHeld: () => void;
    const barrier = new Promise<void>((resolve) => (bothHeld = resolve));
    let runs = 0;
    const writer = (first: number, second: number) =>
      store.transaction(async (trx) => {
        runs++;
        await sql`update probe set n = n + 1 where id = ${first}`.execute(trx);
        if (++holding === 2) bothHeld();
        await barrier;
        await sql`update probe set n = n + 1 where id = ${second}`.execute(trx);
      });

    await Promise.all([writer(1, 2), writer(2, 1)]);

    // One writer was the deadlock's victim and ran a second time; each committed exactly once.
    expect(runs).toBe(3);
    const { rows } = await sql<{ id: number; n: number }>`select id, n from probe order by id`.execute(
      store.db,
    );
    expect(rows).toEqual([
      { id: 1, n: 2 },
      { id: 2, n: 2 },
    ]);
  });
});
