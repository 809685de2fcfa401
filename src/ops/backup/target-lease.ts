import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { readObject, targetKeys } from './backup-target.js';

/** The lease object that makes one process at a time the writer of a backup target. */
export interface LeaseRecord {
  readonly token: string;
  readonly operation: 'backup' | 'prune';
  /** The backup being written, for `backup` leases. */
  readonly backupId?: string;
  readonly host: string;
  readonly pid: number;
  readonly actor: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}

export interface TargetLease {
  readonly record: LeaseRecord;
  /** Throws `lock_timeout` when another process took the lease over (ours expired). */
  assertHeld(): Promise<void>;
  release(): Promise<void>;
}

export interface AcquireLeaseOptions {
  readonly operation: LeaseRecord['operation'];
  readonly backupId?: string;
  readonly actor: string;
  /** How long the lease lasts without renewal; default 120000. Renewed every third of it. */
  readonly ttlMs?: number;
  readonly now?: () => Date;
}

export const defaultLeaseTtlMs = 120_000;

export async function readLease(store: ObjectStore): Promise<LeaseRecord | undefined> {
  try {
    return JSON.parse(
      (await readObject(store, targetKeys.lease, 1024 * 1024)).toString('utf8'),
    ) as LeaseRecord;
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found') return undefined;
    // An unreadable lease is treated as expired: it cannot name a live holder.
    if (error instanceof SyntaxError)
      return { token: 'unreadable', expiresAt: new Date(0).toISOString() } as LeaseRecord;
    throw error;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the holder can no longer be writing: its lease expired, or it was a process on this host that is gone. */
export function leaseIsStale(lease: LeaseRecord, now: Date): boolean {
  if (Date.parse(lease.expiresAt) <= now.getTime()) return true;
  return lease.host === os.hostname() && lease.pid !== process.pid && !processAlive(lease.pid);
}

/**
 * Takes the target's writer lease, or throws `lock_timeout` (exit 5) naming the holder. A stale
 * lease is taken over through a `takeover-<token>` object created with putIfAbsent, so of several
 * processes that find the same stale lease only one replaces it.
 */
export async function acquireTargetLease(
  store: ObjectStore,
  options: AcquireLeaseOptions,
): Promise<TargetLease> {
  const ttlMs = options.ttlMs ?? defaultLeaseTtlMs;
  const now = options.now ?? (() => new Date());
  const token = randomBytes(12).toString('hex');
  const makeRecord = (): LeaseRecord => ({
    token,
    operation: options.operation,
    ...(options.backupId ? { backupId: options.backupId } : {}),
    host: os.hostname(),
    pid: process.pid,
    actor: options.actor,
    acquiredAt: now().toISOString(),
    expiresAt: new Date(now().getTime() + ttlMs).toISOString(),
  });
  const encode = (record: LeaseRecord) => Buffer.from(`${JSON.stringify(record, null, 2)}\n`);

  let record = makeRecord();
  let acquired = await store.putIfAbsent(targetKeys.lease, encode(record));
  if (!acquired) {
    const current = await readLease(store);
    if (current === undefined) {
      acquired = await store.putIfAbsent(targetKeys.lease, encode(record));
    } else if (
      leaseIsStale(current, now()) &&
      (await store.putIfAbsent(targetKeys.takeover(current.token), encode(record)))
    ) {
      const still = await readLease(store);
      if (still?.token === current.token) await store.delete(targetKeys.lease);
      record = makeRecord();
      acquired = await store.putIfAbsent(targetKeys.lease, encode(record));
      await store.delete(targetKeys.takeover(current.token));
    }
    if (!acquired) {
      const holder = (await readLease(store)) ?? current;
      throw new AthanorError(
        'lock_timeout',
        holder
          ? `backup target ${store.url} is busy: ${holder.operation}${holder.backupId ? ` ${holder.backupId}` : ''} ` +
              `by ${holder.actor} (pid ${holder.pid} on ${holder.host}) since ${holder.acquiredAt}. Retry when it ` +
              `finishes; if it crashed, its lease expires at ${holder.expiresAt}`
          : `backup target ${store.url} is busy with another writer; retry in a moment`,
        { details: holder ? { holder } : {} },
      );
    }
  }

  let lost = false;
  let released = false;
  const renew = async () => {
    if (released || lost) return;
    try {
      const current = await readLease(store);
      if (current?.token !== token) {
        lost = true;
        return;
      }
      record = { ...record, expiresAt: new Date(now().getTime() + ttlMs).toISOString() };
      await store.put(targetKeys.lease, encode(record));
    } catch {
      // A failed renewal is retried at the next tick; assertHeld decides before anything is published.
    }
  };
  const timer = setInterval(() => void renew(), Math.max(1000, Math.floor(ttlMs / 3)));
  timer.unref();

  return {
    get record() {
      return record;
    },
    async assertHeld() {
      const current = await readLease(store);
      if (lost || current?.token !== token) {
        lost = true;
        throw new AthanorError(
          'lock_timeout',
          `lost the writer lease of ${store.url} (it expired and another process took it over); nothing ` +
            `was published. Retry; raise the lease TTL if the target is slow`,
        );
      }
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      try {
        const current = await readLease(store);
        if (current?.token === token) await store.delete(targetKeys.lease);
      } catch {
        // Left in place, the lease expires by itself (or is taken over at once on this host).
      }
    },
  };
}
