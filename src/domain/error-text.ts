/** The class and message of a failure, read from its text (a stack trace or a traceback). */
export interface ErrorSummary {
  /** `TypeError`, `ValueError`, `subprocess.CalledProcessError`…; null when the text names none. */
  readonly errorClass: string | null;
  readonly message: string;
}

const classLine = /^([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*):(?: (.*))?$/;
const looksLikeClass = /(?:Error|Exception|Exit|Interrupt|Warning|Failure)$/;

/**
 * JavaScript stacks name the error on their first line (`TypeError: …`, then `    at …`);
 * Python tracebacks on their last (`Traceback (most recent call last):` … `ValueError: …`).
 * Anything else is a message without a class: its first non-empty line.
 */
export function summarizeErrorText(text: string): ErrorSummary {
  const lines = text.split(/\r?\n/).map((l) => l.trimEnd());
  const nonEmpty = lines.filter((l) => l.trim() !== '');
  const first = nonEmpty[0] ?? '';
  const candidates = first.startsWith('Traceback (most recent call last)')
    ? [...nonEmpty].reverse().filter((l) => !l.startsWith(' '))
    : [first];
  for (const line of candidates) {
    const match = classLine.exec(line);
    if (match && looksLikeClass.test(match[1] as string)) {
      return { errorClass: match[1] as string, message: match[2] ?? '' };
    }
  }
  return { errorClass: null, message: first };
}
