import type { TaskStatus, TransformationView, UserClient } from './user-client.js';

/** Every page of a paged list, in order. */
export async function allPages<T extends { key?: string; id?: string }>(
  fetchPage: (page: { limit: number; after?: string }) => Promise<T[]>,
  limit = 1000,
): Promise<T[]> {
  const all: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await fetchPage(after === undefined ? { limit } : { limit, after });
    all.push(...page);
    const last = page.at(-1);
    if (page.length < limit || !last) return all;
    after = last.key ?? last.id;
  }
}

/** Options of `createNetworkTasks`. */
export interface CreateNetworkTasksOptions {
  /** Tasks per transformation; default 1. */
  readonly count?: number;
  readonly priority?: number;
  /** Also put the new tasks on the network's hub, so compute services can claim them. */
  readonly action?: boolean;
  /** Hub weight of actioned tasks, 0 to 1 (the server's default when absent). */
  readonly weight?: number;
  /** Requests in flight at once; default 8. */
  readonly concurrency?: number;
}

export interface CreatedNetworkTask {
  readonly task: string;
  readonly transformation: string;
  /** Set when actioned: true when the task went on the hub. */
  readonly actioned?: boolean;
}

/** The ids the bulk endpoints take per call. */
const bulkChunk = 1000;

/**
 * Creates tasks for every transformation of a network (and, with `action`, puts them on its hub):
 * what a scientist does after submitting. A failure stops the run with the server's error; tasks
 * created before it exist and are returned by `task list --network`.
 */
export async function createNetworkTasks(
  client: UserClient,
  networkKey: string,
  options: CreateNetworkTasksOptions = {},
): Promise<CreatedNetworkTask[]> {
  const transformations = await allPages<TransformationView>((page) =>
    client.networkTransformations(networkKey, page),
  );
  const created: { task: string; transformation: string }[] = [];
  const queue = [...transformations];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const tasks = await client.createTasks(next.key, {
        count: options.count ?? 1,
        ...(options.priority === undefined ? {} : { priority: options.priority }),
      });
      for (const task of tasks) created.push({ task: task.id, transformation: next.key });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, worker));
  if (!options.action) return created;
  const actioned = new Map<string, boolean>();
  for (let i = 0; i < created.length; i += bulkChunk) {
    const ids = created.slice(i, i + bulkChunk).map((c) => c.task);
    for (const answer of await client.actionTasks(networkKey, ids, options.weight))
      actioned.set(answer.task, answer.result === true);
  }
  return created.map((c) => ({ ...c, actioned: actioned.get(c.task) ?? false }));
}

/** Task statuses after which nothing more happens unless a user acts. */
export const settledStatuses: readonly TaskStatus[] = ['complete', 'error', 'invalid', 'deleted'];

export interface NetworkProgress {
  readonly counts: Partial<Record<TaskStatus, number>>;
  readonly total: number;
  /** Tasks in a settled status. */
  readonly settled: number;
  readonly finished: boolean;
}

/** A network's task counts, and whether every task has settled. */
export async function networkProgress(client: UserClient, networkKey: string): Promise<NetworkProgress> {
  const counts = await client.networkStatus(networkKey);
  const total = Object.values(counts).reduce<number>((sum, n) => sum + (n ?? 0), 0);
  const settled = settledStatuses.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
  return { counts, total, settled, finished: total > 0 && settled === total };
}
