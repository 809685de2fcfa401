import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AthanorError } from '../domain/errors.js';
import { JsonParserThread } from './json-parser-thread.js';
import type { JsonParseOutcome } from './json-text.js';
import { parseJsonText } from './json-text.js';

/** Bodies at least this long are parsed in the JSON parser thread, off the event loop. */
export const threadParseMinBytes = 1024 * 1024;

/** The parsed value, or the registry's `validation_failed` naming what is wrong. */
export function jsonBodyValue(outcome: JsonParseOutcome, maxJsonDepth: number): unknown {
  if ('value' in outcome) return outcome.value;
  if ('tooDeep' in outcome) {
    throw new AthanorError(
      'validation_failed',
      `the JSON body nests arrays and objects deeper than ${maxJsonDepth} levels (ATHANOR_MAX_JSON_DEPTH)`,
    );
  }
  throw new AthanorError(
    'validation_failed',
    outcome.invalid,
    outcome.detail === undefined ? undefined : { cause: new SyntaxError(outcome.detail) },
  );
}

/**
 * Replaces Fastify's JSON body parser with `parseJsonText`. A body of `threadParseMinBytes` or
 * more is parsed in a thread of its own and handed back in slices: parsing 6 MB on the event
 * loop held every other request for a quarter of a second.
 */
export function useJsonBodyParser(app: FastifyInstance, maxJsonDepth: number): void {
  const thread = new JsonParserThread();
  app.addHook('onClose', () => thread.close());
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    async (_request: FastifyRequest, body: string | Buffer) => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      const outcome =
        bytes.length >= threadParseMinBytes
          ? await thread.parse(bytes, maxJsonDepth)
          : parseJsonText(bytes.toString(), maxJsonDepth);
      return jsonBodyValue(outcome, maxJsonDepth);
    },
  );
}
