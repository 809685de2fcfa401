import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Database } from '../schema.js';

/** A lease's progress as its compute service reported it on a heartbeat. */
export interface LeaseProgress {
  readonly taskId: string;
  readonly leaseToken: number;
  readonly fraction: number | null;
  readonly message: string | null;
}

/**
 * Stores the progress of live leases: one write per reporting task, and only while the lease is
 * the task's current one (a stale report changes nothing).
 */
export async function storeLeaseProgress(
  db: Kysely<Database>,
  reports: readonly LeaseProgress[],
  now: string,
): Promise<void> {
  for (const report of reports) {
    await db
      .updateTable('tasks')
      .set({ progress_fraction: report.fraction, progress_message: report.message, progress_at: now })
      .where('id', '=', report.taskId)
      .where('lease_token', '=', report.leaseToken)
      .where('status', '=', 'running')
      .execute();
  }
}

/** Progress buckets of running tasks, `none` for those that reported no fraction. */
export const progressBuckets = ['none', '0-25', '25-50', '50-75', '75-100'] as const;
export type ProgressBucket = (typeof progressBuckets)[number];

/** Running tasks counted by progress bucket. */
export async function runningTasksByProgress(db: Kysely<Database>): Promise<Map<ProgressBucket, number>> {
  const { rows } = await sql<{ bucket: ProgressBucket; n: number | string }>`
    select case
        when progress_fraction is null then 'none'
        when progress_fraction < 0.25 then '0-25'
        when progress_fraction < 0.5 then '25-50'
        when progress_fraction < 0.75 then '50-75'
        else '75-100' end as bucket,
      count(*) as n
    from tasks where status = 'running' group by 1`.execute(db);
  const counts = new Map<ProgressBucket, number>(progressBuckets.map((b) => [b, 0]));
  for (const row of rows) counts.set(row.bucket, Number(row.n));
  return counts;
}
