import { randomBytes } from 'node:crypto';
import type { Store } from '../../store/open-store.js';
import { getSetting, putSetting } from '../../store/queries/settings.js';

/** This process, as the holder of a leader lease names it. */
export const processHolderId = `${process.pid}-${randomBytes(6).toString('hex')}`;

interface LeaseValue {
  readonly holder: string;
  readonly expiresAt: number;
}

/**
 * A leader lease for work that runs outside any transaction (HTTP deliveries, strategies): the
 * sweeper's leader lock decides who may look, and a row in `settings` says who holds the lease
 * until when. True while `holder` holds it (taken when free or expired, renewed when its own).
 */
export async function holdLeaderLease(
  store: Store,
  name: string,
  holder: string,
  ttlMs: number,
  now = Date.now(),
): Promise<boolean> {
  return store.transaction(async (trx) => {
    if (!(await store.backend.tryLeaderLock(trx, `lease:${name}`))) return false;
    const key = `leader.${name}`;
    const current = parseLease(await getSetting(trx, key));
    if (current && current.holder !== holder && current.expiresAt > now) return false;
    const value: LeaseValue = { holder, expiresAt: now + ttlMs };
    await putSetting(trx, key, JSON.stringify(value), new Date(now).toISOString());
    return true;
  });
}

/** Gives the lease up (a server stopping), so another replica takes over at once. */
export async function releaseLeaderLease(store: Store, name: string, holder: string): Promise<void> {
  await store.transaction(async (trx) => {
    const key = `leader.${name}`;
    const current = parseLease(await getSetting(trx, key));
    if (current?.holder === holder) await trx.deleteFrom('settings').where('key', '=', key).execute();
  });
}

function parseLease(text: string | undefined): LeaseValue | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<LeaseValue>;
    return typeof value.holder === 'string' && typeof value.expiresAt === 'number'
      ? { holder: value.holder, expiresAt: value.expiresAt }
      : undefined;
  } catch {
    return undefined;
  }
}
