/**
 * True when `text` (JSON) nests arrays and objects deeper than `limit`. One pass, no recursion,
 * before the body is parsed: a body nested 10,000 levels costs a scan, not a stack overflow.
 *
 * Self-contained (no imports, no outer names): the JSON parser thread runs it from its source.
 */
export function jsonNestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** What parsing a JSON body gave: its value, or why it was refused. */
export type JsonParseOutcome =
  | { readonly value: unknown }
  | { readonly tooDeep: true }
  | { readonly invalid: string; readonly detail?: string };

/**
 * Parses a JSON body after refusing one nested deeper than `maxDepth`. `1e999` would silently
 * become `Infinity` (and `null` once stored): it is refused, as are `__proto__` keys.
 *
 * Self-contained but for `jsonNestsDeeperThan` (no imports, no other outer names): the JSON
 * parser thread runs both from their source.
 */
export function parseJsonText(text: string, maxDepth: number): JsonParseOutcome {
  if (text.trim() === '') return { invalid: 'the JSON body is empty' };
  if (jsonNestsDeeperThan(text, maxDepth)) return { tooDeep: true };
  class Refused {
    constructor(readonly message: string) {}
  }
  // Text that may parse to a non-finite number (an exponent, or more digits than a double holds)
  // or carry a prototype-poisoning key. Anything else is parsed without a reviver, at full speed.
  const needsChecks = /\d[eE]|\d{309}|__proto__|constructor/;
  const checkValue = (key: string, value: unknown): unknown => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new Refused(
        `the number at '${key}' is too large to be a finite JSON number: send it as a string`,
      );
    }
    const hasPrototype =
      typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, 'prototype');
    if (key === '__proto__' || (key === 'constructor' && hasPrototype)) {
      throw new Refused(`the body holds a forbidden key '${key}'`);
    }
    return value;
  };
  try {
    return { value: needsChecks.test(text) ? JSON.parse(text, checkValue) : JSON.parse(text) };
  } catch (error) {
    if (error instanceof Refused) return { invalid: error.message };
    return { invalid: 'the body is not valid JSON', detail: (error as Error).message };
  }
}
