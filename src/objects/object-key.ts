import { AthanorError } from '../domain/errors.js';

/** S3's limit on a key's length, applied to every store so keys move between them freely. */
export const maxObjectKeyBytes = 1024;

/** Control characters (U+0000–U+001F, U+007F) and `\`, which not every store can hold. */
function hasForbiddenCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === 0x5c) return true;
  }
  return false;
}

function refuse(what: string, text: string, why: string): never {
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  throw new AthanorError(
    'invalid_argument',
    `${what} ${shown} ${why}: keys are '/'-separated names such as 'blobs/sha256/ab/abcd…'`,
    { details: { key: text } },
  );
}

function checkSegments(what: string, text: string, segments: readonly string[]): void {
  for (const segment of segments) {
    if (segment === '') refuse(what, text, "has an empty segment (a leading, trailing or doubled '/')");
    if (segment === '.' || segment === '..') refuse(what, text, `has a '${segment}' segment`);
  }
}

/**
 * Checks an object key: `/`-separated segments, none empty, `.` or `..`, no control characters or
 * `\`, at most 1024 UTF-8 bytes. Returns the key; throws `invalid_argument` naming the problem.
 */
export function assertObjectKey(key: string): string {
  if (key === '') refuse('object key', key, 'is empty');
  if (Buffer.byteLength(key) > maxObjectKeyBytes) {
    refuse('object key', key, `is longer than ${maxObjectKeyBytes} bytes`);
  }
  if (hasForbiddenCharacter(key)) refuse('object key', key, 'contains a control character or a backslash');
  checkSegments('object key', key, key.split('/'));
  return key;
}

/**
 * Checks a listing prefix: empty, or whole segments (as in a key) then an optional partial last
 * segment, e.g. `backups/`, `blobs/sha256/a`.
 */
export function assertObjectPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (Buffer.byteLength(prefix) > maxObjectKeyBytes) {
    refuse('object prefix', prefix, `is longer than ${maxObjectKeyBytes} bytes`);
  }
  if (hasForbiddenCharacter(prefix)) {
    refuse('object prefix', prefix, 'contains a control character or a backslash');
  }
  const segments = prefix.split('/');
  checkSegments('object prefix', prefix, segments.slice(0, -1));
  return prefix;
}

/** Compares keys in UTF-8 byte order, the order S3 lists them in. */
export function compareObjectKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
