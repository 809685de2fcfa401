import { createHash } from 'node:crypto';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import type { Scope } from './scope.js';
import { formatScope } from './scope.js';

export interface TransformationContent {
  readonly name: string;
  readonly protocol: string;
  readonly inputs: unknown;
}

/** Content key of a transformation within a scope: the same content gives the same key. */
export function transformationKey(scope: Scope, content: TransformationContent): string {
  const canonical = canonicalJson({
    scope: formatScope(scope),
    name: content.name,
    protocol: content.protocol,
    inputs: content.inputs,
  });
  return `tf-${sha256Hex(canonical)}`;
}

/**
 * The canonical JSON of `{scope, name, transformations}` that a network's key hashes, given its
 * transformation keys deduplicated and sorted, in pieces of at most `keysPerPiece` keys: a caller
 * can hash a network of 100,000 transformations and let other work run between the pieces.
 */
export function* networkKeyText(
  scope: Scope,
  name: string,
  sortedUniqueKeys: readonly string[],
  keysPerPiece = 5000,
): Generator<string> {
  yield `{"name":${JSON.stringify(name)},"scope":${JSON.stringify(formatScope(scope))},"transformations":[`;
  for (let i = 0; i < sortedUniqueKeys.length; i += keysPerPiece) {
    const piece = sortedUniqueKeys.slice(i, i + keysPerPiece).map((k) => JSON.stringify(k));
    yield `${i > 0 ? ',' : ''}${piece.join(',')}`;
  }
  yield ']}';
}

/** Content key of a network: its scope, name and set of transformations (order does not matter). */
export function networkKey(scope: Scope, name: string, transformationKeys: readonly string[]): string {
  const hash = createHash('sha256');
  const sortedUniqueKeys = [...new Set(transformationKeys)].sort();
  for (const piece of networkKeyText(scope, name, sortedUniqueKeys)) hash.update(piece);
  return `net-${hash.digest('hex')}`;
}
