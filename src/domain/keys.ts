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

/** Content key of a network: its scope, name and set of transformations (order does not matter). */
export function networkKey(scope: Scope, name: string, transformationKeys: readonly string[]): string {
  const unique = [...new Set(transformationKeys)].sort();
  return `net-${sha256Hex(canonicalJson({ scope: formatScope(scope), name, transformations: unique }))}`;
}
