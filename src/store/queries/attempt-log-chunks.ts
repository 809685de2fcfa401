import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import { chunked } from './chunked.js';

/** What a running attempt's log gained since its last append, starting at `offsetBytes`. */
export interface LogAppend {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly offsetBytes: number;
  readonly text: string;
}

/** Where the next append of each of these attempts' live logs starts (0 for none yet). */
export async function liveLogEnds(
  db: Kysely<Database>,
  attempts: readonly { taskId: string; leaseToken: number }[],
): Promise<Map<string, number>> {
  const ends = new Map<string, number>();
  for (const chunk of chunked([...new Set(attempts.map((a) => a.taskId))], 500)) {
    const rows = await db
      .selectFrom('attempt_log_chunks')
      .select(['task_id', 'lease_token'])
      .select((eb) => eb.fn.max(eb('offset_bytes', '+', eb.ref('size_bytes'))).as('end_bytes'))
      .where('task_id', 'in', chunk)
      .groupBy(['task_id', 'lease_token'])
      .execute();
    for (const row of rows) ends.set(`${row.task_id}:${row.lease_token}`, Number(row.end_bytes));
  }
  return ends;
}

/** Stores appends, all in one statement (each must start where its attempt's log ends). */
export async function insertLogChunks(
  db: Kysely<Database>,
  appends: readonly LogAppend[],
  now: string,
): Promise<void> {
  for (const chunk of chunked(appends, 100)) {
    await db
      .insertInto('attempt_log_chunks')
      .values(
        chunk.map((a) => ({
          task_id: a.taskId,
          lease_token: a.leaseToken,
          offset_bytes: a.offsetBytes,
          size_bytes: Buffer.byteLength(a.text),
          text: a.text,
          created_at: now,
        })),
      )
      .execute();
  }
}

/** One page of an attempt's live log chunks that end after `fromBytes`, in order. */
export async function readLogChunks(
  db: Kysely<Database>,
  attempt: { taskId: string; leaseToken: number },
  fromBytes: number,
  limit: number,
): Promise<{ offset_bytes: number; size_bytes: number; text: string }[]> {
  return db
    .selectFrom('attempt_log_chunks')
    .select(['offset_bytes', 'size_bytes', 'text'])
    .where('task_id', '=', attempt.taskId)
    .where('lease_token', '=', attempt.leaseToken)
    .where((eb) => eb(eb('offset_bytes', '+', eb.ref('size_bytes')), '>', fromBytes))
    .orderBy('offset_bytes')
    .limit(limit)
    .execute();
}

/** Drops an attempt's live log chunks (its uploaded log replaces them). */
export async function deleteLogChunks(
  db: Kysely<Database>,
  attempt: { taskId: string; leaseToken: number },
): Promise<void> {
  await db
    .deleteFrom('attempt_log_chunks')
    .where('task_id', '=', attempt.taskId)
    .where('lease_token', '=', attempt.leaseToken)
    .execute();
}
