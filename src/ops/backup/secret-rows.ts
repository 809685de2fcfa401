import { consoleCsrfSecretKey } from '../../service/console-sessions.js';
import type { Row } from './snapshot.js';

/**
 * Rows a backup never carries: the stored JWT signing secrets and the console's form-token key,
 * and the console sessions. Whoever holds a backup must not be able to mint tokens; a restored
 * installation generates new secrets, so tokens and console sessions from before the restore
 * stop working.
 */
export function isSecretRow(table: string, row: Row): boolean {
  if (table === 'console_sessions') return true;
  return (
    table === 'settings' &&
    typeof row.key === 'string' &&
    (row.key.startsWith('jwt_secret') || row.key === consoleCsrfSecretKey)
  );
}

/** The table's row batches without the secret rows. */
export async function* withoutSecretRows(
  table: string,
  batches: AsyncIterable<readonly Row[]>,
): AsyncIterable<readonly Row[]> {
  const filtered = table === 'settings' || table === 'console_sessions';
  for await (const batch of batches) {
    const kept = filtered ? batch.filter((row) => !isSecretRow(table, row)) : batch;
    if (kept.length > 0) yield kept;
  }
}
