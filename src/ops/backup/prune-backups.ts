import type { Config } from '../../config/resolve-config.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { osActor } from '../../service/audit.js';
import { auditBackupEvent } from './backup-audit.js';
import { errorFacts } from '../../domain/errors.js';
import { deleteBackup, listBackups, scanTarget, targetKeys } from './backup-target.js';
import type { RetentionDecision, RetentionPolicy } from './retention.js';
import { applyRetention } from './retention.js';
import { unreferencedBlobs } from './backup-blobs.js';
import { acquireTargetLease } from './target-lease.js';

export interface PruneOptions {
  readonly target: ObjectStore;
  readonly policy: RetentionPolicy;
  /** Decide and report, delete nothing; default false. */
  readonly dryRun?: boolean;
  readonly now?: () => Date;
  readonly actor?: string;
  /** The configured database, only for the audit log (prune works without one). */
  readonly auditConfig?: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>;
}

export interface PruneResult extends RetentionDecision {
  readonly dryRun: boolean;
  /** Directories of backups that never finished (no manifest), removed with the pruned ones. */
  readonly incomplete: readonly string[];
  /** Result blobs no kept backup references any more, removed (or, with dryRun, to be removed). */
  readonly blobs: readonly string[];
  /** Why blobs were left alone, when they were (a kept backup's manifest could not be read). */
  readonly blobsKeptBecause?: string;
}

/**
 * Applies a retention policy to the backups at a target. Holds the target's writer lease, so no
 * backup is in progress while it runs (a running backup makes prune exit 5). Deletes each pruned
 * backup's manifest first, so an interrupted prune never leaves a half-deleted backup listed.
 */
export async function pruneBackups(options: PruneOptions): Promise<PruneResult> {
  const now = options.now ?? (() => new Date());
  const actor = options.actor ?? osActor();
  const target = options.target;
  const event = { actor, action: 'backup.prune', target: target.url };
  try {
    const lease = await acquireTargetLease(target, { operation: 'prune', actor, now });
    let result: PruneResult;
    try {
      const directories = await scanTarget(target);
      const backups = await listBackups(target);
      const decision = applyRetention(
        backups.map((b) => ({ id: b.id, createdAt: b.createdAt, verified: b.verification?.ok === true })),
        options.policy,
        now(),
      );
      const incomplete = [...directories.keys()].filter(
        (id) => !directories.get(id)?.includes(targetKeys.manifest(id)),
      );
      const removed = new Set(decision.remove);
      const kept = backups.filter((b) => !removed.has(b.id));
      const unreadable = kept.find((b) => !b.manifest);
      const blobs = unreadable
        ? []
        : await unreferencedBlobs(
            target,
            kept.flatMap((b) => (b.manifest ? [b.manifest] : [])),
          );
      result = {
        ...decision,
        incomplete,
        blobs,
        ...(unreadable
          ? { blobsKeptBecause: `the manifest of kept backup ${unreadable.id} cannot be read` }
          : {}),
        dryRun: options.dryRun ?? false,
      };
      if (!result.dryRun) {
        await lease.assertHeld();
        for (const id of decision.remove) await deleteBackup(target, id, directories.get(id));
        for (const id of incomplete) for (const key of directories.get(id) ?? []) await target.delete(key);
        // Blobs last: an interrupted prune leaves extra blobs (removed next time), never missing ones.
        for (const key of blobs) await target.delete(key);
      }
    } finally {
      await lease.release();
    }
    if (options.auditConfig && !result.dryRun) {
      await auditBackupEvent(options.auditConfig, {
        ...event,
        outcome: 'ok',
        details: {
          policy: options.policy,
          removed: result.remove,
          incomplete: result.incomplete,
          kept: result.keep.length,
          blobsRemoved: result.blobs.length,
        },
      });
    }
    return result;
  } catch (error) {
    if (options.auditConfig) {
      await auditBackupEvent(options.auditConfig, {
        ...event,
        outcome: 'error',
        details: { ...errorFacts(error) },
      });
    }
    throw error;
  }
}
