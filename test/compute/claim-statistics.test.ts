import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const reltuples = async (db: Kysely<unknown>) =>
  (
    await sql<{
      n: number;
    }>`select reltuples as n from pg_class where oid = to_regclass('hub_tasks')`.execute(db)
  ).rows[0]!.n;

describeEachBackend('claim statistics', (backend) => {
  const dir = tempDir();

  it('re-counts a hub that a bulk action grew by much before its first claims, and not after a small one', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network, transformations } = await networkWithTasks(user, { count: 300 });
    if (backend === 'postgres') expect(await reltuples(server.store.db as Kysely<unknown>)).toBe(300);
    // Ten more entries are within a tenth of the 300 counted: no new count.
    const more = await user.createTasks(transformations[0]!, { count: 10 });
    await user.actionTasks(
      network,
      more.map((t) => t.id),
    );
    if (backend === 'postgres') expect(await reltuples(server.store.db as Kysely<unknown>)).toBe(300);
    const { id } = await compute.register('stats');
    expect(await compute.claim(id, { count: 5 })).toHaveLength(5);
  });
});
