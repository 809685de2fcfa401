import { AthanorError, isAthanorError } from '../domain/errors.js';
import { parseScope } from '../domain/scope.js';
import { parseDuration } from '../domain/parse-duration.js';
import { collect } from './context.js';

/** A duration flag (`90m`, `12h`), refused with a message naming the flag. */
export const durationOption = (flag: string) => (value: string) => parseDuration(value, flag);

/** Checks each scope flag as it is parsed, so a bad scope is refused before the service registers. */
export function scopeOption(flag: string) {
  return (value: string, previous: string[] = []): string[] => {
    try {
      parseScope(value);
    } catch (error) {
      if (!isAthanorError(error)) throw error;
      throw new AthanorError(error.code, `${flag} ${error.message}`, { cause: error });
    }
    return collect(value, previous);
  };
}
