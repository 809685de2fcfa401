import RE2 from 're2';
import { AthanorError } from '../domain/errors.js';

/** The longest restart pattern accepted (the API schema says the same). */
export const maxPatternLength = 1000;

/**
 * Restart policy patterns are RE2 regular expressions, matched anywhere in the failure text
 * (anchor with `^` and `$` to match all of it). RE2 runs in time linear in the text whatever the
 * pattern, so neither a user's pattern nor a failure text can stall the server; it has no
 * backreferences and no lookaround, and a pattern that uses them is refused at submission.
 */
export function compileRestartPattern(pattern: string): RE2 {
  if (pattern.length === 0 || pattern.length > maxPatternLength) {
    throw new AthanorError(
      'validation_failed',
      `a restart pattern has 1 to ${maxPatternLength} characters, this one has ${pattern.length}`,
    );
  }
  try {
    return new RE2(pattern);
  } catch (cause) {
    throw new AthanorError(
      'validation_failed',
      `restart pattern '${pattern}' is not a valid RE2 regular expression (${(cause as Error).message}); ` +
        'backreferences and lookaround are not supported',
      { cause },
    );
  }
}

/** Checks patterns at submission; the first bad one is refused with 400. */
export function checkRestartPatterns(patterns: readonly string[]): void {
  for (const pattern of patterns) compileRestartPattern(pattern);
}

const compiled = new Map<string, RE2 | null>();

/**
 * True when the failure text matches the pattern. A stored pattern that no longer compiles (it
 * predates validation) matches nothing.
 */
export function restartPatternMatches(pattern: string, text: string): boolean {
  let expression = compiled.get(pattern);
  if (expression === undefined) {
    try {
      expression = compileRestartPattern(pattern);
    } catch {
      expression = null;
    }
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, expression);
  }
  return expression !== null && expression.test(text);
}
