import type { Kysely, Selectable } from 'kysely';
import type { Database, NetworkStrategiesTable } from '../schema.js';

export type NetworkStrategyRow = Selectable<NetworkStrategiesTable>;

export async function findStrategy(db: Kysely<Database>, networkKey: string) {
  return db
    .selectFrom('network_strategies')
    .selectAll()
    .where('network_key', '=', networkKey)
    .executeTakeFirst();
}

export async function upsertStrategy(db: Kysely<Database>, row: NetworkStrategyRow): Promise<void> {
  const { network_key: _, ...changes } = row;
  await db
    .insertInto('network_strategies')
    .values(row)
    .onConflict((oc) => oc.column('network_key').doUpdateSet(changes))
    .execute();
}

export async function updateStrategy(
  db: Kysely<Database>,
  networkKey: string,
  changes: Partial<Omit<NetworkStrategyRow, 'network_key'>>,
): Promise<void> {
  await db.updateTable('network_strategies').set(changes).where('network_key', '=', networkKey).execute();
}

export async function deleteStrategy(db: Kysely<Database>, networkKey: string): Promise<boolean> {
  const r = await db
    .deleteFrom('network_strategies')
    .where('network_key', '=', networkKey)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Active strategies of the given networks (all active ones when `keys` is undefined). */
export async function activeStrategies(
  db: Kysely<Database>,
  keys?: readonly string[],
): Promise<NetworkStrategyRow[]> {
  if (keys?.length === 0) return [];
  let query = db.selectFrom('network_strategies').selectAll().where('state', '=', 'active');
  if (keys) query = query.where('network_key', 'in', [...keys]);
  return query.orderBy('network_key').execute();
}

/** Per transformation of a network: its tasks by status, and its tasks on the network's hub. */
export async function networkPictureRows(db: Kysely<Database>, networkKey: string) {
  const transformations = await db
    .selectFrom('network_transformations as nt')
    .innerJoin('transformations as tf', 'tf.key', 'nt.transformation_key')
    .select(['tf.key', 'tf.name', 'tf.protocol'])
    .where('nt.network_key', '=', networkKey)
    .orderBy('tf.key')
    .execute();
  const counts = await db
    .selectFrom('network_transformations as nt')
    .innerJoin('tasks as t', 't.transformation_key', 'nt.transformation_key')
    .select(['t.transformation_key', 't.status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('nt.network_key', '=', networkKey)
    .where('t.status', 'in', ['complete', 'error'])
    .groupBy(['t.transformation_key', 't.status'])
    .execute();
  const onHub = await db
    .selectFrom('hub_tasks as ht')
    .innerJoin('tasks as t', 't.id', 'ht.task_id')
    .select(['t.id', 't.transformation_key', 't.status', 't.priority'])
    .where('ht.network_key', '=', networkKey)
    .where('t.status', 'in', ['waiting', 'running'])
    .execute();
  return { transformations, counts, onHub };
}
