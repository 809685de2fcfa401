import type { Row } from './snapshot.js';

/**
 * Rows a backup never carries: the stored JWT signing secrets. Whoever holds a backup must not be
 * able to mint tokens; a restored installation generates a new secret, so tokens issued before
 * the restore stop working.
 */
export function isSecretRow(table: string, row: Row): boolean {
  return table === 'settings' && typeof row.key === 'string' && row.key.startsWith('jwt_secret');
}

/** The table's row batches without the secret rows. */
export async function* withoutSecretRows(
  table: string,
  batches: AsyncIterable<readonly Row[]>,
): AsyncIterable<readonly Row[]> {
  for await (const batch of batches) {
    const kept = table === 'settings' ? batch.filter((row) => !isSecretRow(table, row)) : batch;
    if (kept.length > 0) yield kept;
  }
}
