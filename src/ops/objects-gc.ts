import { AthanorError } from '../domain/errors.js';
import { blobRefreshAfterMs } from '../objects/blob-store.js';
import type { ObjectStore } from '../objects/object-store.js';
import { recordAudit } from '../service/audit.js';
import type { Store } from '../store/open-store.js';
import { referencedBlobs } from '../store/queries/compute.js';

export interface GarbageCollectionOptions {
  readonly store: Store;
  readonly objects: ObjectStore;
  /** Only objects older than this are removed; default one day, at least `minimumGraceMs`. */
  readonly graceMs?: number;
  /**
   * The point-in-time window: blobs younger than this are kept too, so that a restore to any
   * point inside it finds every blob its results reference; default 0 (no window).
   */
  readonly pitrWindowMs?: number;
  /** Decide and report, delete nothing. */
  readonly dryRun?: boolean;
  readonly actor: string;
  readonly now?: () => Date;
}

export interface GarbageCollectionResult {
  readonly dryRun: boolean;
  /** Blobs looked at. */
  readonly blobs: number;
  /** Unreferenced blobs past the grace period: removed (or to be, with dryRun). */
  readonly removed: readonly string[];
  /** Left-over partial uploads (`tmp/…`) past the grace period: removed (or to be). */
  readonly partials: readonly string[];
  /** Bytes those take. */
  readonly removedBytes: number;
}

const blobPrefix = 'blobs/sha256/';

/**
 * The shortest grace period: reused blobs are rewritten once older than an hour, so the grace
 * must exceed that plus the longest upload, or a blob about to be referenced could look old.
 */
export const minimumGraceMs = 2 * blobRefreshAfterMs;
const tempPrefix = 'tmp/';
const batchSize = 500;

/**
 * Removes result blobs no result references, and partial uploads, once they are older than the
 * grace period. A result whose lease ran out while it uploaded leaves such a blob; so does a
 * result of a deleted database. Blobs younger than the grace period are kept: an upload in
 * progress has not committed its reference yet, and `putBlob` rewrites a reused blob older than an
 * hour, so one about to be referenced again is always young.
 */
export async function collectGarbage(options: GarbageCollectionOptions): Promise<GarbageCollectionResult> {
  const graceMs = options.graceMs ?? 24 * 60 * 60 * 1000;
  if (graceMs < minimumGraceMs) {
    throw new AthanorError(
      'invalid_argument',
      `the grace period must be at least ${minimumGraceMs / 3_600_000} hours: a blob stored again is only renewed once it is an hour old`,
    );
  }
  const cutoff = (options.now?.() ?? new Date()).getTime() - Math.max(graceMs, options.pitrWindowMs ?? 0);
  const dryRun = options.dryRun ?? false;
  const removed: string[] = [];
  const partials: string[] = [];
  let removedBytes = 0;
  let blobs = 0;
  let batch: { key: string; sha256: string; sizeBytes: number }[] = [];

  const sweep = async () => {
    const referenced = await referencedBlobs(
      options.store.db,
      batch.map((b) => b.sha256),
    );
    for (const blob of batch) {
      if (referenced.has(blob.sha256)) continue;
      if (!dryRun) {
        // The listing may be stale: a blob stored again since is young now, and a result may have
        // committed a reference to it since the batch was checked.
        const now = await options.objects.head(blob.key);
        if (!now || Date.parse(now.modifiedAt) >= cutoff) continue;
        if ((await referencedBlobs(options.store.db, [blob.sha256])).size > 0) continue;
        await options.objects.delete(blob.key);
      }
      removed.push(blob.key);
      removedBytes += blob.sizeBytes;
    }
    batch = [];
  };

  for await (const object of options.objects.list(blobPrefix)) {
    blobs += 1;
    if (Date.parse(object.modifiedAt) >= cutoff) continue;
    batch.push({
      key: object.key,
      sha256: object.key.slice(object.key.lastIndexOf('/') + 1),
      sizeBytes: object.sizeBytes,
    });
    if (batch.length >= batchSize) await sweep();
  }
  if (batch.length > 0) await sweep();
  for await (const object of options.objects.list(tempPrefix)) {
    if (Date.parse(object.modifiedAt) >= cutoff) continue;
    if (!dryRun) await options.objects.delete(object.key);
    partials.push(object.key);
    removedBytes += object.sizeBytes;
  }
  if (!dryRun) {
    await recordAudit(options.store, {
      actor: options.actor,
      action: 'objects.gc',
      target: options.objects.url,
      outcome: 'ok',
      details: { removed: removed.length, partials: partials.length, removedBytes, graceMs },
    });
  }
  return { dryRun, blobs, removed, partials, removedBytes };
}
