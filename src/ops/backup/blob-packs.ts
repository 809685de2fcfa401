import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Pack } from 'tar-stream';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import { mapLimited } from '../../domain/map-limited.js';
import {
  blobKey,
  getBlob,
  getSmallBlob,
  hasFreshBlob,
  putBlob,
  putSmallBlobs,
} from '../../objects/blob-store.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { readObject } from './backup-target.js';
import type { Compression } from './compression.js';
import { compressionExtension, createCompressor, createDecompressor } from './compression.js';
import type { StreamDecrypter, StreamEncrypter } from './encryption.js';
import type { BackupManifest, ManifestPack } from './manifest.js';
import { ByteMeter, chain, lines } from './streams.js';

/** Where packs of result blobs live at a backup target, shared by every backup that lists them. */
export const packsPrefix = 'packs/';
/** Plaintext blob bytes a pack holds before the next one is started: 256 MiB. */
export const defaultPackBytes = 256 * 1024 * 1024;
/** Blobs up to this size are read whole; larger ones stream into their pack entry. */
const smallBlobBytes = 256 * 1024;
/** Blobs read from the object store at the same time. */
const readConcurrency = 8;
/** Blobs read ahead of the pack, and the bytes they may hold in memory. */
const batchCount = 512;
const batchBytes = 32 * 1024 * 1024;

/** First 16 hex digits of the sha256 of the sorted recipients: names the key a blob is encrypted to. */
export function recipientsKeyId(recipients: readonly string[]): string {
  return createHash('sha256')
    .update([...recipients].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
}

/** The directory of a backup's packs: `packs/` in plaintext, `packs/age-<key id>/` when encrypted. */
export function packDirectory(recipients: readonly string[] | undefined): string {
  return recipients ? `${packsPrefix}age-${recipientsKeyId(recipients)}/` : packsPrefix;
}

/** A blob's name inside a pack: its object-store key below `blobs/`, so a pack extracts into one. */
export function packEntryName(sha256: string): string {
  return `sha256/${sha256.slice(0, 2)}/${sha256}`;
}

const entryPattern = /^sha256\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** One line of a pack's index: a blob the pack holds, in pack order. */
export interface PackIndexEntry {
  readonly sha256: string;
  readonly sizeBytes: number;
}

export interface PackedBlobs {
  /** Every pack the backup lists: those it wrote and those of earlier backups it reuses. */
  readonly packs: readonly ManifestPack[];
  /** Referenced by a row but absent from the object store: recorded, not fatal. */
  readonly missing: readonly string[];
  /** Blobs the backup holds, in the packs it lists. */
  readonly blobCount: number;
  /** How many were already in a pack of an earlier backup (deduplicated). */
  readonly reused: number;
}

export interface PackedBlobCopyOptions {
  readonly backupId: string;
  readonly objects: ObjectStore;
  readonly target: ObjectStore;
  readonly compression: Compression;
  readonly encrypter: StreamEncrypter | undefined;
  readonly recipients: readonly string[] | undefined;
  /** The newest earlier backup at the target: blobs already in its packs are not packed again. */
  readonly previous?: BackupManifest;
  /** Plaintext blob bytes per pack; default 256 MiB. */
  readonly packBytes?: number;
}

/** Blobs packed into a backup while its snapshot is still being read. */
export interface PackedBlobCopy {
  /** A blob a snapshot row references (its plaintext size from the row); repeats are ignored. */
  add(sha256: string, sizeBytes: number): void;
  /** Packs what is left; resolves once every pack and its index is durable at the target. */
  finish(): Promise<PackedBlobs>;
  /** Starts nothing more, waits for the running batch and removes the packs this backup wrote. */
  abandon(): Promise<void>;
}

/** The pack being written: a tar stream, compressed (and encrypted) on its way to the target. */
interface OpenPack {
  readonly path: string;
  readonly indexPath: string;
  readonly tar: Pack;
  readonly stored: Promise<{ sizeBytes: number; sha256: string }>;
  readonly entries: PackIndexEntry[];
  blobBytes: number;
}

/**
 * Packs the result blobs a backup references into a few large files at the target (format 2),
 * each blob read once from the object store and checked against its digest on the way. Blobs an
 * earlier backup's packs already hold are not copied again: the new backup lists those packs.
 */
export async function startPackedBlobCopy(options: PackedBlobCopyOptions): Promise<PackedBlobCopy> {
  const { target } = options;
  const directory = packDirectory(options.recipients);
  const packBytes = options.packBytes ?? defaultPackBytes;
  const extension = compressionExtension[options.compression];
  // What the earlier backup's packs hold, when they are packs this backup's key opens.
  const reusable = new Map<string, ManifestPack>();
  for (const pack of options.previous?.packs ?? []) {
    if (!pack.path.startsWith(directory) || pack.path.slice(directory.length).includes('/')) continue;
    const stored = await target.head(pack.path);
    if (stored?.sizeBytes !== pack.sizeBytes) continue;
    const index = await readPackIndex(target, options.previous as BackupManifest, pack).catch(
      () => undefined,
    );
    for (const entry of index ?? []) reusable.set(entry.sha256, pack);
  }
  const listed = new Map<string, ManifestPack>();
  const written: ManifestPack[] = [];
  const seen = new Set<string>();
  const missing = new Set<string>();
  let reused = 0;
  let blobCount = 0;
  let current: OpenPack | undefined;
  let pending: [string, number][] = [];
  let pendingBytes = 0;
  let running: Promise<void> = Promise.resolve();
  let failure: { readonly error: unknown } | undefined;
  let abandoned = false;

  const openPack = (): OpenPack => {
    const name = `${directory}${options.backupId}.${written.length}`;
    const pack = tar.pack();
    const plain = Readable.from(pack as unknown as AsyncIterable<Buffer>);
    const compressed = chain(plain, createCompressor(options.compression));
    const path = `${name}.tar.${extension}${options.encrypter ? '.age' : ''}`;
    const stored = (async () => {
      const body = options.encrypter ? await options.encrypter.encrypt(compressed) : compressed;
      const meter = new ByteMeter();
      const { sizeBytes } = await target.put(path, chain(body, meter));
      if (sizeBytes !== meter.sizeBytes)
        throw new AthanorError(
          'internal',
          `${target.url} stored ${sizeBytes} bytes of ${path}, sent ${meter.sizeBytes}`,
        );
      return { sizeBytes, sha256: meter.sha256 };
    })();
    stored.catch(() => {});
    return {
      path,
      indexPath: `${name}.index.ndjson.${extension}`,
      tar: pack,
      stored,
      entries: [],
      blobBytes: 0,
    };
  };

  const closePack = async (pack: OpenPack): Promise<void> => {
    pack.tar.finalize();
    const stored = await pack.stored;
    const text = pack.entries.map((e) => `${JSON.stringify(e)}\n`).join('');
    const indexBytes = await compressBuffer(Buffer.from(text), options.compression);
    await target.put(pack.indexPath, indexBytes);
    const manifestPack: ManifestPack = {
      path: pack.path,
      sizeBytes: stored.sizeBytes,
      sha256: stored.sha256,
      index: {
        path: pack.indexPath,
        sizeBytes: indexBytes.length,
        sha256: createHash('sha256').update(indexBytes).digest('hex'),
      },
      blobCount: pack.entries.length,
      blobBytes: pack.blobBytes,
    };
    written.push(manifestPack);
    listed.set(manifestPack.path, manifestPack);
  };

  const append = async (sha256: string, body: Buffer | Readable, sizeBytes: number) => {
    current ??= openPack();
    const pack = current;
    // A target that fails stops taking the pack's bytes: its error ends the wait for the entry.
    await Promise.race([addEntry(pack.tar, packEntryName(sha256), body, sizeBytes), pack.stored]);
    pack.entries.push({ sha256, sizeBytes });
    pack.blobBytes += sizeBytes;
    blobCount += 1;
    if (pack.blobBytes >= packBytes) {
      current = undefined;
      await closePack(pack);
    }
  };

  const copyBatch = async (batch: readonly (readonly [string, number])[]) => {
    // Small blobs are read ahead, several at a time, then appended in order; large ones stream.
    const bodies = await mapLimited(batch, readConcurrency, async ([sha256, sizeBytes]) => {
      if (sizeBytes > smallBlobBytes) return undefined;
      try {
        return (await getSmallBlob(options.objects, sha256, 2 * smallBlobBytes)) ?? null;
      } catch (error) {
        if (isAthanorError(error) && error.code === 'not_found') return 'missing' as const;
        throw error;
      }
    });
    for (const [i, [sha256]] of batch.entries()) {
      const read = bodies[i];
      if (read === 'missing') {
        missing.add(sha256);
        continue;
      }
      if (Buffer.isBuffer(read)) {
        await append(sha256, read, read.length);
        continue;
      }
      const stored = await options.objects.head(blobKey(sha256));
      if (!stored) {
        missing.add(sha256);
        continue;
      }
      let source: Readable;
      try {
        source = await getBlob(options.objects, sha256);
      } catch (error) {
        if (isAthanorError(error) && error.code === 'not_found') {
          missing.add(sha256);
          continue;
        }
        throw error;
      }
      await append(sha256, source, stored.sizeBytes);
    }
  };

  const flush = () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    running = running.then(async () => {
      if (failure || abandoned) return;
      try {
        await copyBatch(batch);
      } catch (error) {
        failure = { error };
      }
    });
  };

  return {
    add(sha256, sizeBytes) {
      if (seen.has(sha256) || failure || abandoned) return;
      seen.add(sha256);
      const earlier = reusable.get(sha256);
      if (earlier) {
        listed.set(earlier.path, earlier);
        reused += 1;
        blobCount += 1;
        return;
      }
      pending.push([sha256, sizeBytes]);
      pendingBytes += Math.min(sizeBytes, smallBlobBytes);
      if (pending.length >= batchCount || pendingBytes >= batchBytes) flush();
    },
    async finish() {
      flush();
      await running;
      if (failure) throw failure.error;
      if (current) {
        const last = current;
        current = undefined;
        await closePack(last);
      }
      const byPath = (a: ManifestPack, b: ManifestPack) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
      return {
        packs: [...listed.values()].sort(byPath),
        missing: [...missing].sort(),
        blobCount,
        reused,
      };
    },
    async abandon() {
      abandoned = true;
      pending = [];
      await running;
      current?.tar.destroy(new Error('the backup was abandoned'));
      await current?.stored.catch(() => {});
      for (const pack of written) {
        await target.delete(pack.path).catch(() => {});
        await target.delete(pack.index.path).catch(() => {});
      }
    },
  };
}

async function compressBuffer(bytes: Buffer, compression: Compression): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of chain(Readable.from([bytes]), createCompressor(compression)))
    parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Appends one blob to a pack; resolves once the pack has taken its bytes. */
function addEntry(pack: Pack, name: string, body: Buffer | Readable, size: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const header = { name, size, mode: 0o600, mtime: new Date(0) };
    if (Buffer.isBuffer(body)) {
      pack.entry(header, body, (error) => (error ? reject(error) : resolve()));
      return;
    }
    const entry = pack.entry(header, (error) => {
      if (!error) resolve();
      else {
        body.destroy();
        reject(error);
      }
    });
    body.once('error', (error) => {
      entry.destroy(error);
      reject(error);
    });
    body.pipe(entry);
  });
}

function corruptPack(manifest: BackupManifest, path: string, problem: string, cause?: unknown): AthanorError {
  return new AthanorError(
    'backup_corrupt',
    `backup ${manifest.id}: ${path} ${problem}; its results cannot be restored, use another backup ('athanor backup list')`,
    { ...(cause === undefined ? {} : { cause }), details: { backupId: manifest.id, files: [path], problem } },
  );
}

/** The blobs a pack holds, from its index file, checked against the manifest. */
export async function readPackIndex(
  target: ObjectStore,
  manifest: BackupManifest,
  pack: ManifestPack,
): Promise<PackIndexEntry[]> {
  let stored: Buffer;
  try {
    stored = await readObject(target, pack.index.path, pack.index.sizeBytes + 1);
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found')
      throw corruptPack(manifest, pack.index.path, 'is missing');
    throw error;
  }
  if (
    stored.length !== pack.index.sizeBytes ||
    createHash('sha256').update(stored).digest('hex') !== pack.index.sha256
  )
    throw corruptPack(manifest, pack.index.path, 'does not match its size and sha256 in the manifest');
  const entries: PackIndexEntry[] = [];
  for await (const line of lines(chain(Readable.from([stored]), createDecompressor(manifest.compression)))) {
    entries.push(JSON.parse(line) as PackIndexEntry);
  }
  return entries;
}

/**
 * Reads a pack from start to end: every blob is handed to `onBlob` (a buffer, or a stream for a
 * large one, which must be read to its end) after its name was checked; the stored bytes are
 * checked against the manifest's size and sha256 once the pack has been read.
 */
export async function readPack(
  target: ObjectStore,
  manifest: BackupManifest,
  pack: ManifestPack,
  decrypter: StreamDecrypter | undefined,
  onBlob: (sha256: string, sizeBytes: number, body: Buffer | Readable) => Promise<void>,
): Promise<void> {
  let raw: Readable;
  try {
    raw = await target.get(pack.path);
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found')
      throw corruptPack(manifest, pack.path, 'is missing');
    throw error;
  }
  try {
    await readPackEntries(manifest, pack, raw, decrypter, onBlob);
  } finally {
    raw.destroy();
  }
}

async function readPackEntries(
  manifest: BackupManifest,
  pack: ManifestPack,
  raw: Readable,
  decrypter: StreamDecrypter | undefined,
  onBlob: (sha256: string, sizeBytes: number, body: Buffer | Readable) => Promise<void>,
): Promise<void> {
  const meter = new ByteMeter();
  const measured = chain(raw, meter);
  const plain = decrypter ? await decrypter.decrypt(measured) : measured;
  const extract = tar.extract();
  const entries = chain(plain, createDecompressor(manifest.compression));
  entries.pipe(extract as unknown as NodeJS.WritableStream);
  entries.once('error', (error) => extract.destroy(error));
  try {
    for await (const entry of extract) {
      const match = entryPattern.exec(entry.header.name);
      const size = entry.header.size ?? 0;
      if (!match || match[1] !== match[2]?.slice(0, 2))
        throw corruptPack(manifest, pack.path, `holds an entry that is not a blob (${entry.header.name})`);
      const sha256 = match[2] as string;
      if (size <= smallBlobBytes) {
        const parts: Buffer[] = [];
        for await (const part of entry) parts.push(part as Buffer);
        await onBlob(sha256, size, Buffer.concat(parts));
      } else {
        await onBlob(sha256, size, entry as unknown as Readable);
      }
    }
  } catch (error) {
    if (isAthanorError(error)) throw error;
    throw corruptPack(manifest, pack.path, `cannot be read (${(error as Error).message})`, error);
  }
  if (meter.sizeBytes !== pack.sizeBytes || meter.sha256 !== pack.sha256)
    throw corruptPack(manifest, pack.path, 'does not match its size and sha256 in the manifest');
}

/**
 * Puts the blobs of a backup's packs back into the object store, skipping those it already holds
 * fresh. Each is checked against its digest; a damaged one stops the restore with `backup_corrupt`.
 */
export async function restorePackedBlobs(options: {
  readonly target: ObjectStore;
  readonly manifest: BackupManifest;
  readonly objects: ObjectStore;
  readonly decrypter: StreamDecrypter | undefined;
  readonly signal?: AbortSignal;
}): Promise<{ copied: number; present: number }> {
  let copied = 0;
  let present = 0;
  let small: { sha256: string; body: Buffer }[] = [];
  let smallBytes = 0;
  // A batch of small blobs: which the object store lacks is asked several at a time, then those
  // are written together (each fsynced, one directory sync per directory, all durable at once).
  // An older copy is written again, renewing it: the restored database's references are not
  // committed yet, and the garbage collector takes unreferenced blobs once they are old.
  const flush = async () => {
    if (small.length === 0) return;
    const batch = small;
    small = [];
    smallBytes = 0;
    const fresh = await mapLimited(batch, readConcurrency, (blob) =>
      hasFreshBlob(options.objects, blob.sha256, blob.body.length),
    );
    const lacking = batch.filter((_, i) => !fresh[i]).map((blob) => blob.body);
    present += batch.length - lacking.length;
    copied += lacking.length;
    if (lacking.length > 0) await putSmallBlobs(options.objects, lacking, { checked: true });
  };
  const mismatch = (pack: ManifestPack, sha256: string) =>
    corruptPack(options.manifest, pack.path, `holds blob ${sha256} whose bytes do not match it`);
  for (const pack of options.manifest.packs ?? []) {
    options.signal?.throwIfAborted();
    await readPack(
      options.target,
      options.manifest,
      pack,
      options.decrypter,
      async (sha256, sizeBytes, body) => {
        if (Buffer.isBuffer(body)) {
          if (createHash('sha256').update(body).digest('hex') !== sha256) throw mismatch(pack, sha256);
          small.push({ sha256, body });
          smallBytes += body.length;
          if (small.length >= 2000 || smallBytes >= batchBytes) await flush();
          return;
        }
        if (await hasFreshBlob(options.objects, sha256, sizeBytes)) {
          present += 1;
          for await (const _ of body) void _;
          return;
        }
        const stored = await putBlob(options.objects, body);
        if (stored.sha256 !== sha256) throw mismatch(pack, sha256);
        copied += 1;
      },
    );
    await flush();
  }
  return { copied, present };
}

/**
 * What is wrong with a backup's packs, pack by pack: with `readContent`, every blob is read (and
 * decrypted) and checked against its name and the pack's index; without, the stored bytes are
 * checked against the manifest, which needs no key. Also returns the blobs the packs hold.
 */
export async function checkPacks(
  target: ObjectStore,
  manifest: BackupManifest,
  decrypter: StreamDecrypter | undefined,
  options: { readonly readContent: boolean },
): Promise<{ problems: { file: string; problem: string }[]; held: Set<string> }> {
  const problems: { file: string; problem: string }[] = [];
  const held = new Set<string>();
  for (const pack of manifest.packs ?? []) {
    let index: PackIndexEntry[];
    try {
      index = await readPackIndex(target, manifest, pack);
    } catch (error) {
      if (!isAthanorError(error) || error.code !== 'backup_corrupt') throw error;
      problems.push({ file: pack.index.path, problem: error.message });
      continue;
    }
    for (const entry of index) held.add(entry.sha256);
    try {
      if (!options.readContent) {
        const stored = await readObjectDigest(target, pack.path);
        if (!stored) problems.push({ file: pack.path, problem: 'is missing' });
        else if (stored.sizeBytes !== pack.sizeBytes || stored.sha256 !== pack.sha256)
          problems.push({ file: pack.path, problem: 'does not match its size and sha256 in the manifest' });
        continue;
      }
      const found: string[] = [];
      await readPack(target, manifest, pack, decrypter, async (sha256, _size, body) => {
        const hash = createHash('sha256');
        if (Buffer.isBuffer(body)) hash.update(body);
        else for await (const part of body) hash.update(part as Buffer);
        if (hash.digest('hex') !== sha256)
          throw corruptPack(manifest, pack.path, `holds blob ${sha256} whose bytes do not match it`);
        found.push(sha256);
      });
      if (found.length !== index.length || found.some((sha256, i) => index[i]?.sha256 !== sha256))
        problems.push({ file: pack.path, problem: 'holds other blobs than its index lists' });
    } catch (error) {
      if (isAthanorError(error) && error.code === 'backup_decryption_failed') throw error;
      if (!isAthanorError(error) || error.code !== 'backup_corrupt') throw error;
      problems.push({
        file: pack.path,
        problem: (error.details as { problem?: string } | undefined)?.problem ?? error.message,
      });
    }
  }
  return { problems, held };
}

async function readObjectDigest(
  target: ObjectStore,
  key: string,
): Promise<{ sizeBytes: number; sha256: string } | undefined> {
  let source: Readable;
  try {
    source = await target.get(key);
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found') return undefined;
    throw error;
  }
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const part of source) {
    hash.update(part as Buffer);
    sizeBytes += (part as Buffer).length;
  }
  return { sizeBytes, sha256: hash.digest('hex') };
}
