import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import { getBlob, getSmallBlob, hasFreshBlob, putBlob, putSmallBlobs } from '../../objects/blob-store.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { StreamDecrypter, StreamEncrypter } from './encryption.js';
import type { BackupManifest, ManifestBlob } from './manifest.js';
import { mapLimited } from '../../domain/map-limited.js';
import { ByteMeter, chain } from './streams.js';

/** Blobs copied at the same time by a backup or a restore. */
const blobCopyConcurrency = 8;
/** Blobs up to this size are read whole and written in batches that share their directory syncs. */
const smallBlobBytes = 256 * 1024;
/** Blobs per batch, and the bytes a batch may hold in memory. */
const blobBatchCount = 2000;
/** While no batch is running, a backup starts one as soon as this many blobs wait. */
const idleBatchCount = 256;
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

/**
 * The target path of a result blob. Plaintext blobs sit at `blobs/sha256/ab/<sha256>`, as in the
 * object store. Encrypted ones sit under a directory named after the recipients they were
 * encrypted to (`blobs/age-<id>/sha256/ab/<sha256>.age`), so a backup only reuses blobs its own
 * key opens.
 */
export function blobTargetPath(sha256: string, recipients: readonly string[] | undefined): string {
  const tail = `sha256/${sha256.slice(0, 2)}/${sha256}`;
  if (!recipients) return `${blobsPrefix}${tail}`;
  const keyId = createHash('sha256')
    .update([...recipients].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  return `${blobsPrefix}age-${keyId}/${tail}.age`;
}

export interface CopyBlobsResult {
  readonly blobs: readonly ManifestBlob[];
  /** Referenced by a result but absent from the object store: recorded, not fatal. */
  readonly missing: readonly string[];
  /** How many were already at the target (deduplicated). */
  readonly reused: number;
}

/** Where a backup's blobs go, and how. */
export interface BlobCopyOptions {
  readonly objects: ObjectStore;
  readonly target: ObjectStore;
  readonly encrypter: StreamEncrypter | undefined;
  readonly recipients: readonly string[] | undefined;
}

/** A copy of result blobs to a backup target that runs while the snapshot is still being read. */
export interface BlobCopy {
  /** A blob a snapshot row references (its plaintext size from the row); repeats are ignored. */
  add(sha256: string, sizeBytes: number): void;
  /** Copies what is left and resolves once every blob is durable at the target, in sha256 order. */
  finish(): Promise<CopyBlobsResult>;
  /** Starts no more batches and waits for the running one (after a failed snapshot). */
  abandon(): Promise<void>;
}

/**
 * Copies the result blobs a backup references from the object store to the target, each read once
 * and checked against its digest on the way; a blob already at the target is not copied again.
 * Blobs are added as the snapshot's rows are read and copied in batches, one batch at a time, while
 * the tables are still being written.
 */
export function startBlobCopy(options: BlobCopyOptions): BlobCopy {
  const seen = new Set<string>();
  const state = { missing: new Set<string>(), reused: 0 };
  const copied: ManifestBlob[] = [];
  let pending: [string, number][] = [];
  let pendingBytes = 0;
  let running: Promise<void> = Promise.resolve();
  let queued = 0;
  let failure: { readonly error: unknown } | undefined;
  let abandoned = false;
  const flush = () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    queued += 1;
    running = running.then(async () => {
      try {
        if (failure || abandoned) return;
        for (const blob of await copyBatch(batch, options, state)) if (blob) copied.push(blob);
      } catch (error) {
        failure = { error };
      } finally {
        queued -= 1;
      }
    });
  };
  return {
    add(sha256, sizeBytes) {
      if (seen.has(sha256) || failure || abandoned) return;
      seen.add(sha256);
      pending.push([sha256, sizeBytes]);
      pendingBytes += Math.min(sizeBytes, smallBlobBytes);
      const full = pending.length >= blobBatchCount || pendingBytes >= blobBatchBytes;
      if (full || (queued === 0 && pending.length >= idleBatchCount)) flush();
    },
    async finish() {
      flush();
      await running;
      if (failure) throw failure.error;
      const bySha = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      return {
        blobs: copied.sort((a, b) => bySha(a.sha256, b.sha256)),
        missing: [...state.missing].sort(bySha),
        reused: state.reused,
      };
    },
    async abandon() {
      abandoned = true;
      pending = [];
      await running;
    },
  };
}

/** One batch of blobs to the target: small ones gathered and published together, large ones streamed. */
async function copyBatch(
  batch: readonly (readonly [string, number])[],
  options: BlobCopyOptions,
  state: { missing: Set<string>; reused: number },
): Promise<(ManifestBlob | undefined)[]> {
  // Small blobs are gathered in memory and published together (`putMany`: each fsynced, every
  // directory synced once before it resolves); large ones stream on their own.
  const small: { key: string; body: Buffer }[] = [];
  const answers = await mapLimited(batch, blobCopyConcurrency, async ([sha256, sizeBytes]) => {
    const path = blobTargetPath(sha256, options.recipients);
    const stored = await options.target.head(path);
    if (stored) {
      state.reused += 1;
      return { sha256, sizeBytes, path, storedSizeBytes: stored.sizeBytes };
    }
    let source: Readable | Buffer | undefined;
    try {
      if (sizeBytes <= smallBlobBytes)
        source = await getSmallBlob(options.objects, sha256, 2 * smallBlobBytes);
      source ??= await getBlob(options.objects, sha256);
    } catch (error) {
      if (isAthanorError(error) && error.code === 'not_found') {
        state.missing.add(sha256);
        return undefined;
      }
      throw error;
    }
    let gathered: Readable | Buffer = source;
    if (options.encrypter) {
      const encrypted = await options.encrypter.encrypt(
        Buffer.isBuffer(source) ? Readable.from([source]) : source,
      );
      gathered = sizeBytes <= smallBlobBytes ? await gatherSmall(encrypted, 2 * smallBlobBytes) : encrypted;
    } else if (!Buffer.isBuffer(source) && sizeBytes <= smallBlobBytes) {
      gathered = await gatherSmall(source, 2 * smallBlobBytes);
    }
    let storedSizeBytes: number;
    if (Buffer.isBuffer(gathered)) {
      small.push({ key: path, body: gathered });
      storedSizeBytes = gathered.length;
    } else {
      const meter = new ByteMeter();
      await options.target.put(path, chain(gathered, meter));
      storedSizeBytes = meter.sizeBytes;
    }
    return { sha256, sizeBytes, path, storedSizeBytes };
  });
  await putAll(options.target, small);
  return answers;
}

/** Writes small objects durably: through `putMany` where the store shares work, else one by one. */
async function putAll(store: ObjectStore, objects: readonly { key: string; body: Buffer }[]): Promise<void> {
  if (objects.length === 0) return;
  if (store.putMany) await store.putMany(objects);
  else await mapLimited(objects, blobCopyConcurrency, (o) => store.put(o.key, o.body));
}

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
 * The blobs at a target that no backup in `manifests` references. Only call this while holding the
 * writer lease, with the manifests of every backup the target keeps.
 */
export async function unreferencedBlobs(
  target: ObjectStore,
  manifests: readonly BackupManifest[],
): Promise<string[]> {
  const referenced = new Set(manifests.flatMap((m) => (m.blobs ?? []).map((b) => b.path)));
  const unreferenced: string[] = [];
  for await (const object of target.list(blobsPrefix)) {
    if (!referenced.has(object.key)) unreferenced.push(object.key);
  }
  return unreferenced;
}
