import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { readObject } from '../backup/backup-target.js';
import { replicaKeys } from './replica-layout.js';
import type { ReplicaHeartbeat } from './sqlite-replicator.js';
import { heartbeatIntervalMs } from './sqlite-replicator.js';
import { replicaRange } from './sqlite-replica-restore.js';

/** Health of the continuous SQLite replica at a target, as `backup status` and `pitr status` show it. */
export interface ReplicationVerdict {
  readonly ok: boolean;
  readonly target: string;
  /** The earliest and latest points a restore reaches; undefined when there is no replica. */
  readonly oldest: string | undefined;
  readonly newest: string | undefined;
  readonly generations: number;
  /** How old the replicator's last heartbeat is; undefined when it never wrote one. */
  readonly heartbeatAgeMs: number | undefined;
  readonly lagMs: number | undefined;
  readonly lastError: string | undefined;
  readonly problem: AthanorError | undefined;
}

/** A replicator that has not written its heartbeat for this long is taken as stopped. */
const staleHeartbeatMs = 4 * heartbeatIntervalMs;

export async function replicationVerdict(
  target: ObjectStore,
  options: { readonly maxLagMs: number; readonly now?: Date },
): Promise<ReplicationVerdict> {
  const now = (options.now ?? new Date()).getTime();
  const range = await replicaRange(target);
  let heartbeat: ReplicaHeartbeat | undefined;
  try {
    heartbeat = JSON.parse(
      (await readObject(target, replicaKeys.heartbeat, 1024 * 1024)).toString('utf8'),
    ) as ReplicaHeartbeat;
  } catch (error) {
    if (!(isAthanorError(error) && error.code === 'not_found') && !(error instanceof SyntaxError))
      throw error;
  }
  const heartbeatAgeMs = heartbeat ? Math.max(0, now - Date.parse(heartbeat.at)) : undefined;
  let problem: AthanorError | undefined;
  if (!range) {
    problem = new AthanorError(
      'backup_stale',
      `there is no point-in-time replica at ${target.url}: 'athanor serve' writes one while ATHANOR_PITR is on`,
    );
  } else if (heartbeatAgeMs === undefined || heartbeatAgeMs > staleHeartbeatMs) {
    problem = new AthanorError(
      'backup_stale',
      `the replicator writing to ${target.url} has not reported for ${heartbeatAgeMs === undefined ? 'ever' : `${Math.round(heartbeatAgeMs / 1000)} s`}: ` +
        `is 'athanor serve' running with ATHANOR_PITR on? Changes since ${range.newest} are not protected`,
    );
  } else if (heartbeat && heartbeat.lagMs > options.maxLagMs) {
    problem = new AthanorError(
      'backup_stale',
      `point-in-time replication to ${target.url} is ${Math.round(heartbeat.lagMs / 1000)} s behind (at most ${Math.round(options.maxLagMs / 1000)} s allowed)` +
        (heartbeat.lastError ? `: ${heartbeat.lastError}` : ''),
    );
  } else if (heartbeat?.lastError) {
    problem = new AthanorError(
      'backup_stale',
      `point-in-time replication to ${target.url} is failing: ${heartbeat.lastError}`,
    );
  }
  return {
    ok: problem === undefined,
    target: target.url,
    oldest: range?.oldest,
    newest: range?.newest,
    generations: range?.generations ?? 0,
    heartbeatAgeMs,
    lagMs: heartbeat?.lagMs,
    lastError: heartbeat?.lastError,
    problem,
  };
}
