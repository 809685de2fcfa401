import type { Kysely, Selectable } from 'kysely';
import type { ConsoleSessionsTable, Database } from '../schema.js';

export type ConsoleSessionRow = Selectable<ConsoleSessionsTable>;

export async function insertConsoleSession(db: Kysely<Database>, row: ConsoleSessionRow): Promise<void> {
  await db.insertInto('console_sessions').values(row).execute();
}

/** The session with the user identity's current state, or undefined when either is gone. */
export async function findConsoleSession(db: Kysely<Database>, tokenSha256: string) {
  return db
    .selectFrom('console_sessions as s')
    .innerJoin('identities as i', (join) =>
      join.on('i.kind', '=', 'user').onRef('i.identifier', '=', 's.identifier'),
    )
    .select([
      's.identifier',
      's.credentials_stamp',
      's.expires_at as session_expires_at',
      'i.credentials_changed_at',
      'i.disabled',
      'i.expires_at',
    ])
    .where('s.token_sha256', '=', tokenSha256)
    .executeTakeFirst();
}

export async function deleteConsoleSession(db: Kysely<Database>, tokenSha256: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('token_sha256', '=', tokenSha256).execute();
}

export async function deleteExpiredConsoleSessions(db: Kysely<Database>, now: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('expires_at', '<=', now).execute();
}
