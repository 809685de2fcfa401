import { AthanorError } from '../domain/errors.js';
import type { TaskView } from '../service/views.js';
import { printTable } from './output.js';

export const short = (key: string | null) =>
  key === null ? '-' : key.length > 20 ? `${key.slice(0, 16)}…` : key;

/** A commander parser for a number flag. */
export function numberOption(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n))
      throw new AthanorError('invalid_argument', `${flag} takes a number, got '${value}'`);
    return n;
  };
}

export function printTasks(tasks: readonly TaskView[]): void {
  printTable(
    tasks,
    [
      { header: 'TASK', value: (t) => t.id },
      { header: 'STATUS', value: (t) => t.status },
      { header: 'PRIORITY', value: (t) => String(t.priority) },
      { header: 'ATTEMPTS', value: (t) => String(t.attempts) },
      { header: 'TRANSFORMATION', value: (t) => short(t.transformation) },
      { header: 'EXTENDS', value: (t) => short(t.extends) },
    ],
    'no tasks',
  );
}

export function printBulk(answers: readonly { task: string; result: unknown; error?: string }[]): void {
  printTable(answers, [
    { header: 'TASK', value: (a) => a.task },
    { header: 'RESULT', value: (a) => (a.result === null ? 'not found' : String(a.result)) },
    { header: 'NOTE', value: (a) => a.error ?? '' },
  ]);
}
