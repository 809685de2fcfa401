import { randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

/** Hashes a key with argon2id (the library's default algorithm, OWASP's recommended parameters). */
export async function hashKey(key: string): Promise<string> {
  return hash(key, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
}

export async function verifyKey(keyHash: string, key: string): Promise<boolean> {
  try {
    return await verify(keyHash, key);
  } catch {
    return false;
  }
}

/** A strong random key: 32 bytes, base64url (43 characters). */
export function generateKey(): string {
  return randomBytes(32).toString('base64url');
}

let dummyHash: Promise<string> | undefined;
/**
 * Verifies against a throwaway hash, so an unknown identifier costs the same time as a wrong key
 * and timing does not reveal which identities exist.
 */
export async function verifyAgainstDummy(key: string): Promise<false> {
  dummyHash ??= hashKey(generateKey());
  await verifyKey(await dummyHash, key);
  return false;
}
