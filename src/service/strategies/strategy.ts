import type { TSchema } from 'typebox';

/** One transformation of a network as a strategy sees it. */
export interface TransformationPicture {
  readonly key: string;
  readonly name: string;
  readonly protocol: string;
  /** Tasks of the transformation by status (every task of it, on any hub). */
  readonly complete: number;
  readonly error: number;
  /** Waiting and running tasks on this network's hub. */
  readonly waiting: number;
  readonly running: number;
  /** Waiting tasks on this network's hub with their priorities (at most 1000). */
  readonly waitingTasks: readonly { readonly id: string; readonly priority: number }[];
}

/** What a strategy decides from: the network and its transformations now. */
export interface NetworkPicture {
  readonly network: {
    readonly key: string;
    readonly scope: string;
    readonly name: string;
    readonly state: string;
  };
  readonly transformations: readonly TransformationPicture[];
}

/** What a strategy may do; each is carried out through the same service function a user calls. */
export type StrategyAction =
  | {
      /** Make sure `count` tasks of the transformation exist (complete, or waiting/running on the hub). */
      readonly kind: 'ensure_tasks';
      readonly transformation: string;
      readonly count: number;
      readonly priority?: number;
      readonly weight?: number;
    }
  | { readonly kind: 'set_priority'; readonly tasks: readonly string[]; readonly priority: number }
  | { readonly kind: 'set_hub_weight'; readonly weight: number };

/**
 * A strategy: looks at a network and says what to do next. `decide` must not do I/O itself; it
 * answers actions, which the platform carries out under the network owner's scopes and quotas,
 * each recorded in the audit log. It is stopped (and the network left as it was) when it throws,
 * answers too many actions, or takes longer than the deadline.
 */
export interface Strategy<P = unknown> {
  readonly name: string;
  readonly description: string;
  /** JSON Schema (TypeBox) of the parameters; checked when a network names the strategy. */
  readonly parameters: TSchema;
  decide(picture: NetworkPicture, params: P): readonly StrategyAction[] | Promise<readonly StrategyAction[]>;
}
