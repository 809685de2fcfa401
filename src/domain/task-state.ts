/** Task statuses; `invalid` and `deleted` are terminal and cascade to tasks extending the task. */
export const taskStatuses = ['waiting', 'running', 'complete', 'error', 'invalid', 'deleted'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** Statuses a user may set directly. */
export const userSettableStatuses = ['waiting', 'invalid', 'deleted'] as const;
export type UserSettableStatus = (typeof userSettableStatuses)[number];

export const terminalStatuses: ReadonlySet<TaskStatus> = new Set(['invalid', 'deleted']);

/** Who causes a transition: a user through the API, or the queue itself (claims, results, leases). */
export type TransitionActor = 'user' | 'system';

const userTransitions: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  waiting: ['waiting', 'invalid', 'deleted'],
  running: ['running', 'invalid', 'deleted'],
  complete: ['complete', 'invalid', 'deleted'],
  error: ['waiting', 'error', 'invalid', 'deleted'],
  invalid: ['invalid'],
  deleted: ['deleted'],
};

const systemTransitions: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  // claim
  waiting: ['running'],
  // result ok, result failed, release or lease expiry, restart policy
  running: ['complete', 'error', 'waiting'],
  complete: [],
  error: ['waiting'],
  invalid: [],
  deleted: [],
};

/**
 * Whether `actor` may move a task from `from` to `to`. Setting a status to itself is allowed
 * for users (idempotent bulk requests) and is a no-op.
 */
export function canTransition(from: TaskStatus, to: TaskStatus, actor: TransitionActor): boolean {
  const table = actor === 'user' ? userTransitions : systemTransitions;
  return table[from].includes(to);
}

/** Explains a refused user transition, for the API's per-task answers. */
export function transitionRefusal(from: TaskStatus, to: TaskStatus): string {
  if (terminalStatuses.has(from)) return `the task is ${from}, which is final`;
  if (from === 'running' && to === 'waiting') {
    return 'the task is running; it returns to waiting when its compute service releases it or its lease expires';
  }
  if (from === 'complete') return 'the task is complete; mark it invalid or deleted, or create a new task';
  return `a task cannot go from ${from} to ${to}`;
}
