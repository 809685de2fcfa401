import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import { hasFreshBlob, putBlob, putSmallBlobs } from '../../objects/blob-store.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { StreamDecrypter } from './encryption.js';
import type { BackupManifest, ManifestBlob } from './manifest.js';
import { mapLimited } from '../../domain/map-limited.js';
import { packsPrefix, restorePackedBlobs } from './blob-packs.js';

/** Blobs copied at the same time by a backup or a restore. */
const blobCopyConcurrency = 8;
/** Blobs up to this size are read whole and written in batches that share their directory syncs. */
const smallBlobBytes = 256 * 1024;
/** Blobs per batch, and the bytes a batch may hold in memory. */
const blobBatchCount = 2000;
const blobBatchBytes = 32 * 1024 * 1024;

/**
 * Splits `items` into runs of at most `blobBatchCount` items and about `blobBatchBytes` bytes, in
 * order. Large enough that the blobs of a batch share most of their 256 directories.
 */
function batches<T>(items: readonly T[], sizeOf: (item: T) => number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length >= blobBatchCount || bytes + sizeOf(item) > blobBatchBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += sizeOf(item);
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * The stream's bytes as one buffer when they end within `limit`; otherwise a stream of all of
 * them (those already read first), so that a blob larger than its record said still streams.
 */
async function gatherSmall(stream: Readable, limit: number): Promise<Buffer | Readable> {
  const head: Buffer[] = [];
  let size = 0;
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return Buffer.concat(head, size);
    head.push(next.value);
    size += next.value.length;
    if (size > limit) break;
  }
  return Readable.from(
    (async function* () {
      yield* head;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    })(),
  );
}

/** Where result blobs live at a backup target, shared by every backup that references them. */
export const blobsPrefix = 'blobs/';

/** What is wrong with one of a backup's blobs at the target, or undefined when it is sound. */
export async function checkBackupBlob(
  target: ObjectStore,
  blob: ManifestBlob,
  decrypter: StreamDecrypter | undefined,
  options: { readonly readContent: boolean },
): Promise<string | undefined> {
  const stored = await target.head(blob.path);
  if (!stored) return 'is missing';
  if (stored.sizeBytes !== blob.storedSizeBytes) {
    return `has ${stored.sizeBytes} bytes, the manifest records ${blob.storedSizeBytes}`;
  }
  // Without the key an encrypted blob's content cannot be checked; size and presence must do.
  if (!options.readContent) return undefined;
  try {
    const raw = await target.get(blob.path);
    const plain = decrypter ? await decrypter.decrypt(raw) : raw;
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of plain) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    if (size !== blob.sizeBytes || hash.digest('hex') !== blob.sha256) {
      return 'does not match its sha256 in the manifest';
    }
  } catch (error) {
    if (isAthanorError(error) && error.code === 'backup_decryption_failed') throw error;
    return `cannot be read (${(error as Error).message})`;
  }
  return undefined;
}

/**
 * Puts a backup's blobs back into the object store, skipping those already there. Each is checked
 * against its digest; a damaged one stops the restore with `backup_corrupt` naming it.
 */
export async function restoreBlobs(options: {
  readonly target: ObjectStore;
  readonly manifest: BackupManifest;
  readonly objects: ObjectStore;
  readonly decrypter: StreamDecrypter | undefined;
  /** Once aborted (the restore failed elsewhere), no further batch is started. */
  readonly signal?: AbortSignal;
}): Promise<{ copied: number; present: number }> {
  if (options.manifest.packs) return restorePackedBlobs(options);
  let copied = 0;
  let present = 0;
  const blobs = options.manifest.blobs ?? [];
  for (const batch of batches(blobs, (blob) => Math.min(blob.storedSizeBytes, smallBlobBytes))) {
    options.signal?.throwIfAborted();
    // Small blobs of the batch go to the object store together (`putSmallBlobs`: each fsynced, one
    // directory sync per directory, all durable before it resolves); large ones stream on their own.
    const small: { blob: ManifestBlob; body: Buffer }[] = [];
    await mapLimited(batch, blobCopyConcurrency, async (blob) => {
      // An older copy is written again, renewing it: the restored database's references are not
      // committed yet, and the garbage collector takes unreferenced blobs once they are old.
      if (await hasFreshBlob(options.objects, blob.sha256, blob.sizeBytes)) {
        present += 1;
        return;
      }
      let raw: Readable | Buffer | undefined;
      try {
        if (blob.storedSizeBytes <= 2 * smallBlobBytes && options.target.getSmall)
          raw = await options.target.getSmall(blob.path, 2 * smallBlobBytes);
        raw ??= await options.target.get(blob.path);
      } catch (error) {
        if (isAthanorError(error) && error.code === 'not_found')
          throw corruptBlob(options.manifest, blob, 'is missing');
        throw error;
      }
      const plain = options.decrypter ? await options.decrypter.decrypt(raw) : raw;
      const gathered =
        !Buffer.isBuffer(plain) && blob.sizeBytes <= smallBlobBytes
          ? await gatherSmall(plain, 2 * smallBlobBytes)
          : plain;
      if (Buffer.isBuffer(gathered)) {
        if (createHash('sha256').update(gathered).digest('hex') !== blob.sha256)
          throw corruptBlob(options.manifest, blob, 'does not match its sha256 in the manifest');
        small.push({ blob, body: gathered });
      } else {
        const stored = await putBlob(options.objects, gathered);
        if (stored.sha256 !== blob.sha256)
          throw corruptBlob(options.manifest, blob, 'does not match its sha256 in the manifest');
      }
      copied += 1;
    });
    if (small.length > 0)
      await putSmallBlobs(
        options.objects,
        small.map((s) => s.body),
        { checked: true },
      );
  }
  return { copied, present };
}

function corruptBlob(manifest: BackupManifest, blob: ManifestBlob, problem: string): AthanorError {
  return new AthanorError(
    'backup_corrupt',
    `backup ${manifest.id}: ${blob.path} ${problem}; its result cannot be restored, use another backup ('athanor backup list')`,
    { details: { backupId: manifest.id, files: [blob.path], problem } },
  );
}

/**
 * The blob files (format 1) and packs with their indexes (format 2) at a target that no backup in
 * `manifests` references. Only call this while holding the writer lease, with the manifests of
 * every backup the target keeps.
 */
export async function unreferencedBlobs(
  target: ObjectStore,
  manifests: readonly BackupManifest[],
): Promise<string[]> {
  const referenced = new Set(
    manifests.flatMap((m) => [
      ...(m.blobs ?? []).map((b) => b.path),
      ...(m.packs ?? []).flatMap((p) => [p.path, p.index.path]),
    ]),
  );
  const unreferenced: string[] = [];
  for (const prefix of [blobsPrefix, packsPrefix]) {
    for await (const object of target.list(prefix)) {
      if (!referenced.has(object.key)) unreferenced.push(object.key);
    }
  }
  return unreferenced;
}
