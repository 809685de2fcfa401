// Grows a drained Athanor database to many more completed tasks with SQL, for the backup benches:
// draining a million tasks through the API would take far longer than the backup it is for. Every
// completed task (its tasks and hub_tasks rows, attempt and result) is copied with new ids; with
// `distinctBlobs` each copied result gets its own result bytes in the object store, as a drain
// would leave them.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { putSmallBlobs } from '../dist/objects/blob-store.js';
import { openObjectStore } from '../dist/objects/open-object-store.js';
import { openStore } from '../dist/store/open-store.js';

const renamed = (column) =>
  sql.raw(`case when x.${column} is null then null else x.${column} || '-' || g.n end`);

/** Copies of every row of `table`, columns in `replace` renamed per copy, copies 2 … `copies` + 1. */
async function copyRows(db, table, columns, replace, copies) {
  const values = columns.map((c) => (replace.includes(c) ? renamed(c) : sql.raw(`x.${c}`)));
  await sql`with recursive g(n) as (select 2 union all select n + 1 from g where n < ${copies + 1})
    insert into ${sql.id(table)} (${sql.join(columns.map((c) => sql.id(c)))})
    select ${sql.join(values)} from ${sql.id(table)} x, g`.execute(db);
}

export async function growDrained(run, total, { distinctBlobs, objectsUrl }) {
  const store = await openStore({ databaseUrl: run.databaseUrl, busyTimeoutMs: 60_000 });
  try {
    const tables = new Map(
      (await store.db.introspection.getTables()).map((t) => [t.name, t.columns.map((c) => c.name)]),
    );
    const { rows } = await sql`select count(*) as n from tasks`.execute(store.db);
    const drained = Number(rows[0].n);
    const copies = Math.ceil(total / drained) - 1;
    if (copies < 1) return drained;
    await store.db.connection().execute(async (db) => {
      if (store.backend.name === 'postgres') await sql`set session_replication_role = replica`.execute(db);
      await copyRows(db, 'tasks', tables.get('tasks'), ['id', 'extends_task_id'], copies);
      await copyRows(db, 'hub_tasks', tables.get('hub_tasks'), ['task_id'], copies);
      const template = (await sql`select * from results order by id`.execute(db)).rows;
      const objects = openObjectStore(objectsUrl);
      for (let g = 2; g <= copies + 1; g++) {
        const bodies = [];
        const copied = template.map((row) => {
          const copy = { ...row, id: `${row.id}-${g}`, task_id: `${row.task_id}-${g}` };
          if (distinctBlobs && row.blob_sha256) {
            const body = Buffer.from(`{"copy":${g},"of":${JSON.stringify(row.id)}}`);
            bodies.push(body);
            copy.blob_sha256 = createHash('sha256').update(body).digest('hex');
            copy.size_bytes = body.length;
          }
          return copy;
        });
        for (let i = 0; i < copied.length; i += 500)
          await db
            .insertInto('results')
            .values(copied.slice(i, i + 500))
            .execute();
        for (let i = 0; i < bodies.length; i += 2000) await putSmallBlobs(objects, bodies.slice(i, i + 2000));
      }
      await copyRows(db, 'task_attempts', tables.get('task_attempts'), ['task_id', 'result_id'], copies);
      if (store.backend.name === 'postgres') {
        await sql`reset session_replication_role`.execute(db);
        await sql`analyze`.execute(db);
      }
    });
    return drained * (copies + 1);
  } finally {
    await store.close();
  }
}
