import type { FastifyInstance } from 'fastify';
import { AthanorError } from '../domain/errors.js';

/**
 * True when `text` (JSON) nests arrays and objects deeper than `limit`. One pass, no recursion,
 * before the body is parsed: a body nested 10,000 levels costs a scan, not a stack overflow.
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

/**
 * Replaces the JSON body parser with one that first refuses bodies nested deeper than
 * `maxJsonDepth` (400), then parses as Fastify would (same prototype-poisoning protection).
 */
export function limitJsonDepth(app: FastifyInstance, maxJsonDepth: number): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (jsonNestsDeeperThan(body as string, maxJsonDepth)) {
      done(
        new AthanorError(
          'validation_failed',
          `the JSON body nests arrays and objects deeper than ${maxJsonDepth} levels (ATHANOR_MAX_JSON_DEPTH)`,
        ),
        undefined,
      );
      return;
    }
    parse(request, body as string, done);
  });
}
