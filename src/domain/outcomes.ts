/** How a task attempt's result came out: its output (`ok`) or its failure text (`failed`). */
export const resultOutcomes = ['ok', 'failed'] as const;
export type ResultOutcome = (typeof resultOutcomes)[number];

/** How an attempt ended: a result, a release without penalty, an expired lease, or a revocation. */
export const attemptOutcomes = [...resultOutcomes, 'released', 'expired', 'revoked'] as const;
export type AttemptOutcome = (typeof attemptOutcomes)[number];
