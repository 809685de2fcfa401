import { sql } from 'kysely';
import type { Principal } from '../auth/principal.js';
import { canAccess } from '../auth/principal.js';
import { AthanorError } from '../domain/errors.js';
import type { Store } from '../store/open-store.js';
import { findTransformation } from '../store/queries/networks.js';
import * as q from '../store/queries/tasks.js';
import { checkWaitingTasksQuota } from './identity-quotas.js';
import { notFound, requireNetwork } from './networks.js';
import { buildTaskRows, maxTasksPerCreate } from './tasks.js';

export interface EnsureTasksInput {
  /** How many tasks must exist (complete, waiting or running). */
  readonly count: number;
  /** Count and put new tasks on this network's hub (its waiting and running tasks count, plus every complete one). */
  readonly network?: string | undefined;
  readonly priority?: number | undefined;
  /** Hub weight of the new tasks; default 0.5. */
  readonly weight?: number | undefined;
}

export interface EnsureTasksAnswer {
  readonly transformation: string;
  /** Tasks that already counted. */
  readonly existing: number;
  /** Tasks created now (empty when enough existed). */
  readonly created: string[];
}

/**
 * Makes sure `count` tasks of a transformation exist: complete ones, and waiting or running ones
 * (on the network's hub when a network is given). Creates only the difference, under the
 * transformation's row lock, so concurrent calls with the same count create it once between them.
 */
export async function ensureTasks(
  store: Store,
  principal: Principal,
  transformationKey: string,
  input: EnsureTasksInput,
): Promise<EnsureTasksAnswer> {
  const { count } = input;
  if (!Number.isInteger(count) || count < 0 || count > maxTasksPerCreate) {
    throw new AthanorError('validation_failed', `body/count must be between 0 and ${maxTasksPerCreate}`);
  }
  const transformation = await findTransformation(store.db, transformationKey);
  if (!transformation || !canAccess(principal, transformation.scope))
    throw notFound('transformation', transformationKey);
  if (input.network !== undefined) await requireNetwork(store, principal, input.network);
  return store.transaction(async (trx) => {
    // A no-op update takes the transformation's row lock (SQLite's write transaction already holds
    // everything): the count below and the insert after it are one step for concurrent callers.
    await sql`update transformations set key = key where key = ${transformationKey}`.execute(trx);
    if (input.network !== undefined) {
      const members = await q.transformationsInNetwork(trx, input.network, [transformationKey]);
      if (!members.has(transformationKey))
        throw new AthanorError(
          'conflict',
          `transformation '${transformationKey}' is not in network '${input.network}'`,
        );
    }
    const existing = await countEnsured(trx, transformationKey, input.network);
    const missing = Math.max(0, count - existing);
    if (missing === 0) return { transformation: transformationKey, existing, created: [] };
    await checkWaitingTasksQuota(trx, principal, missing);
    const rows = buildTaskRows(principal, transformation, missing, { priority: input.priority });
    await q.insertTasks(trx, rows);
    if (input.network !== undefined) {
      await q.actionOnHub(
        trx,
        input.network,
        rows.map((r) => ({ id: r.id, priority: r.priority })),
        input.weight ?? 0.5,
        rows[0]!.created_at,
      );
    }
    return { transformation: transformationKey, existing, created: rows.map((r) => r.id) };
  });
}

async function countEnsured(trx: Store['db'], transformationKey: string, networkKey: string | undefined) {
  const complete = await trx
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('transformation_key', '=', transformationKey)
    .where('status', '=', 'complete')
    .executeTakeFirst();
  let live = trx
    .selectFrom('tasks as t')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('t.transformation_key', '=', transformationKey)
    .where('t.status', 'in', ['waiting', 'running']);
  if (networkKey !== undefined) {
    live = live.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('hub_tasks as ht')
          .select('ht.task_id')
          .whereRef('ht.task_id', '=', 't.id')
          .where('ht.network_key', '=', networkKey),
      ),
    );
  }
  const running = await live.executeTakeFirst();
  return Number(complete?.n ?? 0) + Number(running?.n ?? 0);
}
