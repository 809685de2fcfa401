import { describe, expect, it } from 'vitest';
import { AthanorError, errorBody, errorFacts } from '../../src/domain/errors.js';

describe('error facts', () => {
  it('keeps a registry error’s code and message', () => {
    const error = new AthanorError('stale_lease', 'the lease was taken over: claim again');
    expect(errorFacts(error)).toEqual({
      code: 'stale_lease',
      message: 'the lease was taken over: claim again',
    });
    expect(errorBody(error)).toEqual({
      error: { code: 'stale_lease', message: 'the lease was taken over: claim again' },
    });
  });

  it('calls anything outside the registry internal, keeping its text for the audit log', () => {
    expect(errorFacts(new TypeError('x is undefined'))).toEqual({
      code: 'internal',
      message: 'x is undefined',
    });
    expect(errorFacts('disk full')).toEqual({ code: 'internal', message: 'disk full' });
  });

  it('never carries an error’s details or cause into the body', () => {
    const error = new AthanorError('rate_limited', 'too many requests', {
      cause: new Error('secret internals'),
      details: { retryAfterSeconds: 7 },
    });
    expect(JSON.stringify(errorBody(error))).toBe(
      '{"error":{"code":"rate_limited","message":"too many requests"}}',
    );
  });
});
