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
 * The canonical JSON of `{scope, name, transformations}` (keys deduplicated and sorted) that a
 * network's key hashes, in pieces of at most `keysPerPiece` keys: a caller can hash a network of
 * 100,000 transformations and let other work run between the pieces.
 */
export function* networkKeyText(
  scope: Scope,
  name: string,
  transformationKeys: readonly string[],
  keysPerPiece = 5000,
): Generator<string> {
  const unique = [...new Set(transformationKeys)].sort();
  yield `{"name":${JSON.stringify(name)},"scope":${JSON.stringify(formatScope(scope))},"transformations":[`;
  for (let i = 0; i < unique.length; i += keysPerPiece) {
    const piece = unique.slice(i, i + keysPerPiece).map((k) => JSON.stringify(k));
    yield `${i > 0 ? ',' : ''}${piece.join(',')}`;
  }
  yield ']}';
}

/** Content key of a network: its scope, name and set of transformations (order does not matter). */
export function networkKey(scope: Scope, name: string, transformationKeys: readonly string[]): string {
  const hash = createHash('sha256');
  for (const piece of networkKeyText(scope, name, transformationKeys)) hash.update(piece);
  return `net-${hash.digest('hex')}`;
}
