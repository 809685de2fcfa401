import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AthanorError } from '../domain/errors.js';
import { JsonParserThread } from './json-parser-thread.js';
import type { ThreadParseOutcome } from './json-parser-thread.js';
import type { JsonParseOutcome } from './json-text.js';
import { parseJsonText } from './json-text.js';
import { bodiesCheckedInThread } from './validation.js';

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

/** Route body schemas as JSON text, for the thread; a schema that refers to others stays here. */
const schemaTexts = new WeakMap<object, string | undefined>();

function threadSchemaText(schema: unknown): string | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  if (!schemaTexts.has(schema)) {
    const text = JSON.stringify(schema);
    schemaTexts.set(schema, text.includes('"$ref"') ? undefined : text);
  }
  return schemaTexts.get(schema);
}

/** The body Fastify goes on with; its validator takes the thread's verdict for it. */
function threadBody(outcome: ThreadParseOutcome, maxJsonDepth: number): unknown {
  if ('schemaErrors' in outcome) {
    const refused = {};
    bodiesCheckedInThread.set(refused, outcome.schemaErrors);
    return refused;
  }
  const value = jsonBodyValue(outcome, maxJsonDepth);
  if (outcome.validated && typeof value === 'object' && value !== null)
    bodiesCheckedInThread.set(value, null);
  return value;
}

/**
 * Replaces Fastify's JSON body parser with `parseJsonText`. A body of `threadParseMinBytes` or
 * more is parsed, and checked against its route's schema, in a thread of its own and handed back
 * in slices: parsing 6 MB on the event loop held every other request for a quarter of a second,
 * and checking 100,000 transformations about as long again.
 */
export function useJsonBodyParser(app: FastifyInstance, maxJsonDepth: number): void {
  const thread = new JsonParserThread();
  app.addHook('onClose', () => thread.close());
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    async (request: FastifyRequest, body: string | Buffer) => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      if (bytes.length < threadParseMinBytes) {
        return jsonBodyValue(parseJsonText(bytes.toString(), maxJsonDepth), maxJsonDepth);
      }
      const schema = threadSchemaText(request.routeOptions.schema?.body);
      return threadBody(await thread.parse(bytes, maxJsonDepth, schema), maxJsonDepth);
    },
  );
}
