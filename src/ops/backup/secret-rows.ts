import type { Row } from './snapshot.js';

/**
 * Rows a backup never carries: the stored JWT signing secrets. Whoever holds a backup must not be
 * able to mint tokens; a restored installation generates a new secret, so tokens issued before
 * the restore stop working.
 */
export function isSecretRow(table: string, row: Row): boolean {
  return table === 'settings' && typeof row.key === 'string' && row.key.startsWith('jwt_secret');
}

/** The table's rows without the secret ones. */
export async function* withoutSecretRows(table: string, rows: AsyncIterable<Row>): AsyncIterable<Row> {
  for await (const row of rows) if (!isSecretRow(table, row)) yield row;
}
