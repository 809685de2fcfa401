import { AthanorError } from './errors.js';

const identifierPattern = /^[A-Za-z][A-Za-z0-9_.@-]*$/;
export const maxIdentifierLength = 64;

export const identityKinds = ['user', 'compute'] as const;
/** `user` identities use the user API; `compute` identities the compute API. Never both. */
export type IdentityKind = (typeof identityKinds)[number];

export function parseIdentityKind(text: string): IdentityKind {
  if ((identityKinds as readonly string[]).includes(text)) return text as IdentityKind;
  throw new AthanorError('invalid_argument', `'${text}' is not an identity type: use 'user' or 'compute'`);
}

/** Validates an identity identifier: a letter, then letters, digits, `_ . @ -`; at most 64. */
export function parseIdentifier(text: string): string {
  const fail = (why: string): never => {
    throw new AthanorError('invalid_identifier', `identifier '${text}': ${why}`, {
      details: { identifier: text },
    });
  };
  if (text.length === 0) fail('is empty');
  if (text.length > maxIdentifierLength)
    fail(`is ${text.length} characters; the limit is ${maxIdentifierLength}`);
  if (!/^[A-Za-z]/.test(text)) fail('must start with a letter');
  if (!identifierPattern.test(text)) {
    const bad = [...text].find((c) => !/[A-Za-z0-9_.@-]/.test(c));
    fail(`contains '${bad}'; only letters, digits and _ . @ - are allowed`);
  }
  return text;
}

/** Minimum length of a key chosen by an operator; generated keys are far longer. */
export const minKeyLength = 12;

export function validateKey(key: string): string {
  if (key.length < minKeyLength) {
    throw new AthanorError(
      'invalid_key',
      `the key is ${key.length} characters; use at least ${minKeyLength}, or omit -k to generate a strong one`,
    );
  }
  if (/[\r\n]/.test(key)) {
    throw new AthanorError('invalid_key', 'the key contains a line break; keys are a single line');
  }
  return key;
}
