import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import { chunked } from './chunked.js';
import type { ResultOutcome } from '../../domain/outcomes.js';

export interface NetworkResultRow {
  readonly transformation_key: string;
  readonly transformation_name: string;
  readonly id: string;
  readonly task_id: string;
  readonly outcome: ResultOutcome;
  readonly blob_sha256: string | null;
  readonly size_bytes: number | null;
  readonly created_at: string;
}

/**
 * One page of a network's transformations that have a result (of `outcome`, when given), in key
 * order after `after`, with every such result of their tasks, newest first.
 */
export async function networkResults(
  db: Kysely<Database>,
  params: {
    networkKey: string;
    outcome?: ResultOutcome | undefined;
    limit: number;
    after?: string | undefined;
  },
): Promise<NetworkResultRow[]> {
  let page = db
    .selectFrom('network_transformations as nt')
    .select('nt.transformation_key')
    .where('nt.network_key', '=', params.networkKey)
    .where((eb) => {
      let results = eb
        .selectFrom('tasks as t')
        .innerJoin('results as r', 'r.task_id', 't.id')
        .select('r.id')
        .whereRef('t.transformation_key', '=', 'nt.transformation_key');
      if (params.outcome) results = results.where('r.outcome', '=', params.outcome);
      return eb.exists(results);
    })
    .orderBy('nt.transformation_key')
    .limit(params.limit);
  if (params.after) page = page.where('nt.transformation_key', '>', params.after);
  const keys = (await page.execute()).map((r) => r.transformation_key);
  const rows: NetworkResultRow[] = [];
  for (const chunk of chunked(keys, 500)) {
    let query = db
      .selectFrom('results as r')
      .innerJoin('tasks as t', 't.id', 'r.task_id')
      .innerJoin('transformations as tf', 'tf.key', 't.transformation_key')
      .select([
        't.transformation_key',
        'tf.name as transformation_name',
        'r.id',
        'r.task_id',
        'r.outcome',
        'r.blob_sha256',
        'r.size_bytes',
        'r.created_at',
      ])
      .where('t.transformation_key', 'in', chunk)
      .orderBy('t.transformation_key')
      .orderBy('r.created_at', 'desc')
      .orderBy('r.id');
    if (params.outcome) query = query.where('r.outcome', '=', params.outcome);
    rows.push(...(await query.execute()));
  }
  return rows;
}
