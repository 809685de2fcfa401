import { Type } from 'typebox';
import type { Strategy, StrategyAction } from './strategy.js';

interface RepeatParams {
  readonly n: number;
  readonly weight?: number;
  readonly priority?: number;
}

/** Repeat each transformation until it has `n` successful results. */
export const repeatUntil: Strategy<RepeatParams> = {
  name: 'repeat-until',
  description:
    'keep each transformation running until it has n successful results (failed tasks are replaced)',
  parameters: Type.Object(
    {
      n: Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'successful results wanted per transformation',
      }),
      weight: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      priority: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    },
    { additionalProperties: false },
  ),
  decide(picture, params) {
    const actions: StrategyAction[] = [];
    for (const t of picture.transformations) {
      if (t.complete + t.waiting + t.running >= params.n) continue;
      actions.push({
        kind: 'ensure_tasks',
        transformation: t.key,
        count: params.n,
        ...(params.weight === undefined ? {} : { weight: params.weight }),
        ...(params.priority === undefined ? {} : { priority: params.priority }),
      });
    }
    return actions;
  },
};

interface FewestParams {
  readonly levels?: number;
}

/**
 * Claim first the transformations with the fewest successful results: their waiting tasks get
 * priority 1, the next group 2, and so on over `levels` groups.
 */
export const fewestResultsFirst: Strategy<FewestParams> = {
  name: 'fewest-results-first',
  description:
    'give the waiting tasks of the transformations with the fewest successful results the highest priority',
  parameters: Type.Object(
    {
      levels: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 10, description: 'priority groups; default 3' }),
      ),
    },
    { additionalProperties: false },
  ),
  decide(picture, params) {
    const levels = params.levels ?? 3;
    const ranked = picture.transformations
      .filter((t) => t.waitingTasks.length > 0)
      .sort((a, b) => a.complete - b.complete || a.key.localeCompare(b.key));
    const byPriority = new Map<number, string[]>();
    ranked.forEach((t, index) => {
      const priority = 1 + Math.floor((index * levels) / ranked.length);
      const stale = t.waitingTasks.filter((task) => task.priority !== priority).map((task) => task.id);
      if (stale.length > 0) byPriority.set(priority, [...(byPriority.get(priority) ?? []), ...stale]);
    });
    return [...byPriority].map(([priority, tasks]): StrategyAction => ({
      kind: 'set_priority',
      tasks,
      priority,
    }));
  },
};

export const builtInStrategies: readonly Strategy[] = [
  repeatUntil as Strategy,
  fewestResultsFirst as Strategy,
];
