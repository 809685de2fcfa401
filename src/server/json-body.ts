import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AthanorError } from '../domain/errors.js';
import { jsonNestsDeeperThan } from './request-limits.js';

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

/**
 * Replaces Fastify's JSON body parser with `parseJsonBody`, after refusing bodies nested deeper
 * than `maxJsonDepth` (a scan, not a recursion: 10,000 levels cost a pass, not a stack overflow).
 */
export function useJsonBodyParser(app: FastifyInstance, maxJsonDepth: number): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    async (_request: FastifyRequest, body: string | Buffer) => {
      if (await jsonNestsDeeperThan(body.toString(), maxJsonDepth)) {
        throw new AthanorError(
          'validation_failed',
          `the JSON body nests arrays and objects deeper than ${maxJsonDepth} levels (ATHANOR_MAX_JSON_DEPTH)`,
        );
      }
      return parseJsonBody(body.toString());
    },
  );
}
