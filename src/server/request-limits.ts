import { setImmediate } from 'node:timers/promises';

/** Characters of JSON scanned between two yields to the event loop (about a millisecond's work). */
const scanSliceChars = 256 * 1024;

/**
 * True when `text` (JSON) nests arrays and objects deeper than `limit`. One pass, no recursion,
 * before the body is parsed: a body nested 10,000 levels costs a scan, not a stack overflow. A
 * long body is scanned a slice at a time, yielding to the event loop between slices.
 */
export async function jsonNestsDeeperThan(text: string, limit: number): Promise<boolean> {
  let depth = 0;
  let inString = false;
  let i = 0;
  while (i < text.length) {
    // An escape at the end of a slice moves `i` past it, so the next slice starts after the
    // escaped character, exactly as one unbroken pass would.
    const end = Math.min(text.length, i + scanSliceChars);
    for (; i < end; i++) {
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
    if (i < text.length) await setImmediate();
  }
  return false;
}
