import type { FastifyInstance } from 'fastify';
import { AthanorError } from '../domain/errors.js';

/**
 * Text that may parse to a non-finite number (an exponent, or more digits than a double holds)
 * or carry a prototype-poisoning key. Anything else is parsed without a reviver, at full speed.
 */
const needsChecks = /\d[eE]|\d{309}|__proto__|constructor/;

function checkValue(key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new AthanorError(
      'validation_failed',
      `the number at '${key}' is too large to be a finite JSON number: send it as a string`,
    );
  }
  if (key === '__proto__' || (key === 'constructor' && isObjectWith(value, 'prototype'))) {
    throw new AthanorError('validation_failed', `the body holds a forbidden key '${key}'`);
  }
  return value;
}

function isObjectWith(value: unknown, key: string): boolean {
  return typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key);
}

/**
 * Parses a JSON body. `1e999` would silently become `Infinity` (and `null` once stored): it is
 * refused with 400, as are `__proto__` keys. Errors are the registry's `validation_failed`.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new AthanorError('validation_failed', 'the JSON body is empty');
  try {
    return needsChecks.test(text) ? JSON.parse(text, checkValue) : JSON.parse(text);
  } catch (error) {
    if (error instanceof AthanorError) throw error;
    throw new AthanorError('validation_failed', 'the body is not valid JSON', { cause: error });
  }
}

/** Replaces Fastify's JSON body parser with `parseJsonBody`. */
export function useJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
