import { parseScope } from '../domain/scope.js';
import type { Store } from '../store/open-store.js';
import { countActiveServices } from '../store/queries/compute.js';
import { scopeStatusCounts } from '../store/queries/networks.js';
import { runningTasksByProgress } from '../store/queries/progress.js';

/** The queue as `/metrics` reports it: tasks by scope and status, live services, running progress. */
export interface QueueCounts {
  readonly tasksByScopeAndStatus: readonly {
    readonly scope: string;
    readonly status: string;
    readonly n: number;
  }[];
  readonly activeServices: number;
  /** Running tasks by progress bucket. */
  readonly runningByProgress: ReadonlyMap<string, number>;
}

/** Counts every scope's tasks (no caller's scopes apply: the scrape is the operator's). */
export async function queueCounts(store: Store): Promise<QueueCounts> {
  return {
    tasksByScopeAndStatus: await scopeStatusCounts(store.db, [parseScope('*-*-*')]),
    activeServices: await countActiveServices(store.db),
    runningByProgress: await runningTasksByProgress(store.db),
  };
}
