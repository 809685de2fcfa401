import { createHash } from 'node:crypto';

/** Text already in canonical form, waiting on the work stack between values. */
class Literal {
  constructor(readonly text: string) {}
}

/**
 * Canonical JSON: object keys sorted, no whitespace, so equal values always give equal text
 * and equal content keys. Non-finite numbers are not JSON and are refused by the API schemas.
 * Iterative, with its own stack: any nesting the request limits let through is encoded without
 * touching the call-stack limit.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const work: unknown[] = [value];
  while (work.length > 0) {
    const item = work.pop();
    if (item instanceof Literal) {
      out.push(item.text);
    } else if (item === null || typeof item !== 'object') {
      out.push(JSON.stringify(item));
    } else if (Array.isArray(item)) {
      out.push('[');
      work.push(new Literal(']'));
      for (let i = item.length - 1; i >= 0; i--) {
        work.push(item[i] === undefined ? null : item[i]);
        if (i > 0) work.push(new Literal(','));
      }
    } else {
      const entries = Object.entries(item as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      out.push('{');
      work.push(new Literal('}'));
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i]!;
        work.push(v, new Literal(`${JSON.stringify(k)}:`));
        if (i > 0) work.push(new Literal(','));
      }
    }
  }
  return out.join('');
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
