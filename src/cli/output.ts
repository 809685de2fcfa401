import { debugRequested, plainOutputRequested } from '../config/environment.js';
import { AthanorError, errorBody, ExitCode, isAthanorError } from '../domain/errors.js';

const useColor = (): boolean => process.stdout.isTTY === true && !plainOutputRequested();

export function bold(text: string): string {
  return useColor() ? `\u001b[1m${text}\u001b[22m` : text;
}

export function dim(text: string): string {
  return useColor() ? `\u001b[2m${text}\u001b[22m` : text;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** Notes for the operator go to stderr, so stdout stays clean for pipes and --json. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

export interface Column<Row> {
  readonly header: string;
  readonly value: (row: Row) => string;
}

/** A plain aligned table; an empty list prints `emptyText` instead. */
export function printTable<Row>(
  rows: readonly Row[],
  columns: readonly Column<Row>[],
  emptyText = '(none)',
): void {
  if (rows.length === 0) {
    printLine(dim(emptyText));
    return;
  }
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  printLine(bold(line(columns.map((c) => c.header))));
  for (const row of cells) printLine(line(row));
}

/** Prints an error for the operator and returns the exit code to use. */
export function reportError(error: unknown, json: boolean): ExitCode {
  const known: AthanorError = isAthanorError(error)
    ? error
    : new AthanorError('internal', error instanceof Error ? error.message : String(error), { cause: error });
  if (json) {
    process.stderr.write(`${JSON.stringify(errorBody(known))}\n`);
  } else {
    process.stderr.write(`athanor: ${known.message}\n`);
  }
  if (debugRequested()) {
    process.stderr.write(`${(isAthanorError(error) ? error : known).stack ?? ''}\n`);
    if (error instanceof Error && error.cause)
      process.stderr.write(`cause: ${String((error.cause as Error).stack ?? error.cause)}\n`);
  } else if (!isAthanorError(error)) {
    process.stderr.write('athanor: (set ATHANOR_DEBUG=1 for the stack trace)\n');
  }
  return known.exitCode ?? ExitCode.error;
}
