import { createHash, randomBytes } from 'node:crypto';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { readObject } from '../backup/backup-target.js';

/**
 * Where a SQLite database's continuous replica lives at a backup target, beside the snapshots
 * (which never look under `pitr/`):
 *
 * ```
 * pitr/sqlite/key.age                          with a passphrase: the replica's age identity, encrypted
 * pitr/sqlite/<generation>/base.db.gz[.age]    the database file when the generation began
 * pitr/sqlite/<generation>/generation.json     written once the base is durable: the generation exists
 * pitr/sqlite/<generation>/wal/<index>-<ms>.gz[.age]   committed WAL frames, in order
 * pitr/blobs/…                                 result blobs of a local object store, as in a backup
 * ```
 *
 * A generation is one unbroken run of WAL frames on top of its base. A segment holds groups of
 * whole transactions, each with the time it was read from the log; `<ms>` is the newest of them.
 */
export const replicaKeys = {
  root: 'pitr/sqlite/',
  keyFile: 'pitr/sqlite/key.age',
  heartbeat: 'pitr/sqlite/status.json',
  base: (generation: string, encrypted: boolean) =>
    `pitr/sqlite/${generation}/base.db.gz${encrypted ? '.age' : ''}`,
  generation: (generation: string) => `pitr/sqlite/${generation}/generation.json`,
  segmentPrefix: (generation: string) => `pitr/sqlite/${generation}/wal/`,
  segment: (generation: string, index: number, newestMs: number, encrypted: boolean) =>
    `pitr/sqlite/${generation}/wal/${String(index).padStart(10, '0')}-${String(newestMs).padStart(13, '0')}.gz${encrypted ? '.age' : ''}`,
  blobsRoot: 'pitr/',
} as const;

export const replicaFormat = 'athanor-sqlite-replica';
export const replicaFormatVersion = 1;

/** `generation.json`. */
export interface GenerationRecord {
  readonly format: typeof replicaFormat;
  readonly version: number;
  readonly generation: string;
  /** When the base was read: the earliest point this generation restores to. */
  readonly startedAt: string;
  readonly pageSize: number;
  readonly appVersion: string;
  readonly encryption: {
    readonly mode: 'none' | 'recipients' | 'passphrase';
    readonly recipients: readonly string[];
  };
}

/** A generation id: its start time (UTC, sortable) and a short random part. */
export function newGenerationId(at: Date): string {
  const time = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${time}-${randomBytes(3).toString('hex')}`;
}

export interface SegmentRef {
  readonly key: string;
  readonly index: number;
  readonly newestMs: number;
}

const segmentName = /\/wal\/(\d{10})-(\d{13})\.gz(\.age)?$/;

/** The segments of a generation, in order. */
export async function listSegments(target: ObjectStore, generation: string): Promise<SegmentRef[]> {
  const segments: SegmentRef[] = [];
  for await (const object of target.list(replicaKeys.segmentPrefix(generation))) {
    const match = segmentName.exec(object.key);
    if (match) segments.push({ key: object.key, index: Number(match[1]), newestMs: Number(match[2]) });
  }
  return segments.sort((a, b) => a.index - b.index);
}

/** The complete generations at a target (those with `generation.json`), oldest first. */
export async function listGenerations(target: ObjectStore): Promise<GenerationRecord[]> {
  const ids = new Set<string>();
  for await (const object of target.list(replicaKeys.root)) {
    const rest = object.key.slice(replicaKeys.root.length);
    if (rest.endsWith('/generation.json') && rest.split('/').length === 2)
      ids.add(rest.split('/')[0] as string);
  }
  const records: GenerationRecord[] = [];
  for (const id of [...ids].sort()) {
    try {
      const record = JSON.parse(
        (await readObject(target, replicaKeys.generation(id), 1024 * 1024)).toString('utf8'),
      ) as GenerationRecord;
      if (record.format !== replicaFormat) continue;
      if (record.version > replicaFormatVersion) {
        throw new AthanorError(
          'backup_incompatible',
          `the replica generation ${id} at ${target.url} is format ${record.version}; this release reads up to ${replicaFormatVersion}: upgrade Athanor to restore it`,
        );
      }
      records.push(record);
    } catch (error) {
      if (isAthanorError(error) && error.code === 'backup_incompatible') throw error;
      // A generation whose record cannot be read is not restorable; the others still are.
    }
  }
  return records;
}

/** Segment groups: `[f64 read-at ms][u32 byte length][frames]`, repeated. */
export function encodeGroups(
  groups: readonly { readonly readAtMs: number; readonly frames: Buffer }[],
): Buffer {
  const parts: Buffer[] = [];
  for (const group of groups) {
    const head = Buffer.alloc(12);
    head.writeDoubleBE(group.readAtMs, 0);
    head.writeUInt32BE(group.frames.length, 8);
    parts.push(head, group.frames);
  }
  return Buffer.concat(parts);
}

export function* decodeGroups(bytes: Buffer): Generator<{ readAtMs: number; frames: Buffer }> {
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 12 > bytes.length) throw new Error('a segment ends inside a group header');
    const readAtMs = bytes.readDoubleBE(offset);
    const length = bytes.readUInt32BE(offset + 8);
    const end = offset + 12 + length;
    if (end > bytes.length) throw new Error('a segment ends inside a group');
    yield { readAtMs, frames: bytes.subarray(offset + 12, end) };
    offset = end;
  }
}

/**
 * Where the replica keeps a result blob, under its blobs root: plaintext at `sha256/ab/<sha256>`,
 * as in the object store; encrypted under a directory named after the recipients
 * (`age-<id>/sha256/ab/<sha256>.age`), so a restore only meets blobs its own key opens.
 */
export function blobTargetPath(sha256: string, recipients: readonly string[] | undefined): string {
  const tail = `sha256/${sha256.slice(0, 2)}/${sha256}`;
  if (!recipients) return `blobs/${tail}`;
  const keyId = createHash('sha256')
    .update([...recipients].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  return `blobs/age-${keyId}/${tail}.age`;
}
