import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AthanorError, errorBody, isAthanorError } from '../domain/errors.js';
import { dependencyUnavailable, staleLeaseRefusals } from '../ops/metrics.js';
import { maxKeyLength } from './schemas.js';
import { asDatabaseUnavailable, dependencyRetryAfterSeconds } from '../store/database-availability.js';

const fastifyCodes: Readonly<Record<string, (error: FastifyError) => AthanorError>> = {
  FST_ERR_VALIDATION: (e) => new AthanorError('validation_failed', e.message),
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    new AthanorError(
      'body_too_large',
      'the request body is larger than this server accepts (ATHANOR_BODY_LIMIT_BYTES)',
    ),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (e) => new AthanorError('invalid_argument', e.message),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new AthanorError('validation_failed', 'the JSON body is empty'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new AthanorError('validation_failed', 'the body is not valid JSON'),
  FST_ERR_BAD_URL: () =>
    new AthanorError(
      'invalid_argument',
      'the path is not valid percent-encoding: encode it with encodeURIComponent',
    ),
  FST_ERR_MAX_PARAM_LENGTH: () =>
    new AthanorError('validation_failed', `a path parameter is longer than ${maxKeyLength} characters`),
};

/** Maps every error to the registry: known errors keep their status; the rest are 500 without details. */
export function toAthanorError(error: unknown): AthanorError {
  if (isAthanorError(error)) return error;
  const fastifyError = error as FastifyError;
  if (typeof fastifyError?.code === 'string') {
    const map = fastifyCodes[fastifyError.code];
    if (map) return map(fastifyError);
    if (fastifyError.code.startsWith('FST_ERR_CTP_'))
      return new AthanorError('invalid_argument', fastifyError.message);
  }
  if (typeof fastifyError?.statusCode === 'number' && fastifyError.statusCode === 429) {
    return new AthanorError('rate_limited', 'too many requests: wait a minute and retry');
  }
  const unavailable = asDatabaseUnavailable(error);
  if (unavailable) return unavailable;
  if ((error as SyntaxError) instanceof SyntaxError)
    return new AthanorError('validation_failed', 'the body is not valid JSON');
  return new AthanorError('internal', 'internal error: the server log has the details', { cause: error });
}

/**
 * Maps an error to the registry and does on `reply` what its code calls for (the log line, the
 * dependency counters, `Retry-After`); the API and the console then render it each their own way.
 */
export function prepareErrorReply(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): AthanorError {
  const known = toAthanorError(error);
  if (known.code === 'internal') request.log.error({ err: error }, 'request failed');
  if (known.code === 'maintenance') void reply.header('retry-after', '30');
  const retryAfter = known.details?.retryAfterSeconds;
  if (known.code === 'rate_limited' && typeof retryAfter === 'number')
    void reply.header('retry-after', String(retryAfter));
  if (known.code === 'database_unavailable' || known.code === 'objects_unavailable') {
    request.log.warn({ err: error }, 'a dependency is unavailable');
    dependencyUnavailable.inc({ dependency: known.code === 'database_unavailable' ? 'database' : 'objects' });
    void reply.header('retry-after', String(dependencyRetryAfterSeconds));
  }
  if (known.code === 'stale_lease') staleLeaseRefusals.inc();
  return known;
}

/** The API's error handler: every failure answers `{error: {code, message}}` with its registry status. */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const known = prepareErrorReply(error, request, reply);
  if (known.code === 'unauthenticated') void reply.header('www-authenticate', 'Bearer');
  void reply.status(known.status).send(errorBody(known));
}
