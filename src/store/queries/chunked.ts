/**
 * `items` in consecutive slices of at most `size`: long id lists are sent in several statements,
 * below the bound-parameter limits of both backends.
 */
export function* chunked<T>(items: readonly T[], size: number): Generator<readonly T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
