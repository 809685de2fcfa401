import { createHash } from 'node:crypto';
import { AthanorError } from '../../domain/errors.js';
import type { BackendName } from '../../store/backend.js';
import type { Compression } from './compression.js';
import type { TableColumn } from './snapshot.js';

export const backupFormat = 'athanor-backup';
/** Version of the layout in docs/backup-format.md; readers refuse a newer one. */
export const backupFormatVersion = 2;

/** One stored file of a backup, as stored (after compression and encryption). */
export interface ManifestFile {
  /** Path relative to the backup's directory, e.g. `tables/identities.0.ndjson.gz`. */
  readonly path: string;
  readonly sizeBytes: number;
  readonly sha256: string;
}

/** A result blob the backup references, stored once per target (see backup-blobs.ts). */
export interface ManifestBlob {
  /** The blob's content address (of its plaintext bytes). */
  readonly sha256: string;
  readonly sizeBytes: number;
  /** Path relative to the target's root, e.g. `blobs/sha256/ab/ab12…`. */
  readonly path: string;
  /** Size of the stored file (after encryption). */
  readonly storedSizeBytes: number;
}

/** A pack of result blobs at the target (format 2), shared by every backup that lists it. */
export interface ManifestPack {
  /** Path relative to the target's root, e.g. `packs/20261122T013000Z-a1b2c3.0.tar.gz`. */
  readonly path: string;
  /** Size and sha256 of the stored file (after compression and encryption). */
  readonly sizeBytes: number;
  readonly sha256: string;
  /** The pack's index: one NDJSON line `{sha256, sizeBytes}` per blob, in pack order. */
  readonly index: { readonly path: string; readonly sizeBytes: number; readonly sha256: string };
  readonly blobCount: number;
  /** Plaintext bytes of the blobs it holds. */
  readonly blobBytes: number;
}

export interface ManifestTable {
  readonly name: string;
  readonly columns: readonly TableColumn[];
  readonly primaryKey: readonly string[];
  readonly rowCount: number;
  /** sha256 of the table's NDJSON lines (each ending in `\n`), before compression. */
  readonly contentSha256: string;
  /** The table's chunk files in order; none for an empty table. */
  readonly chunks: readonly string[];
}

export interface ManifestMigration {
  readonly id: number;
  readonly name: string;
  readonly checksum: string;
}

export type ManifestEncryption =
  | { readonly mode: 'none' }
  | { readonly mode: 'recipients'; readonly recipients: readonly string[] }
  | { readonly mode: 'passphrase'; readonly keyFile: string; readonly recipients: readonly string[] };

/** `manifest.json`: written last; a backup directory without one is not a backup. */
export interface BackupManifest {
  readonly format: typeof backupFormat;
  readonly formatVersion: number;
  readonly id: string;
  /** Why it was taken: `manual`, `pre-restore`, `pre-migrate`, `scheduled`. */
  readonly reason: string;
  readonly appVersion: string;
  readonly backend: BackendName;
  readonly schema: { readonly version: number; readonly migrations: readonly ManifestMigration[] };
  readonly snapshot: { readonly takenAt: string; readonly point: string };
  readonly compression: Compression;
  readonly encryption: ManifestEncryption;
  /** Every table, each after the tables it references (the restore order). */
  readonly tables: readonly ManifestTable[];
  readonly files: readonly ManifestFile[];
  /**
   * Format 1: the result blobs the backup's results reference, one file each (absent in backups
   * taken before blobs were kept).
   */
  readonly blobs?: readonly ManifestBlob[];
  /** Format 2: the packs that hold the result blobs the backup's rows reference. */
  readonly packs?: readonly ManifestPack[];
  /** Format 2: how many blobs the backup holds in its packs. */
  readonly blobCount?: number;
  /** Blobs results referenced that the object store did not have when the backup was taken. */
  readonly missingBlobs?: readonly string[];
  readonly totals: { readonly rows: number; readonly files: number; readonly sizeBytes: number };
  readonly timings: {
    readonly startedAt: string;
    readonly completedAt: string;
    readonly snapshotMs: number;
    readonly durationMs: number;
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The manifest's bytes: pretty JSON plus `manifestSha256`, the sha256 of the same JSON without
 * that field, so a changed byte anywhere in the manifest is detected.
 */
export function serializeManifest(manifest: BackupManifest): Buffer {
  const body = JSON.stringify(manifest, null, 2);
  return Buffer.from(`${JSON.stringify({ ...manifest, manifestSha256: sha256(body) }, null, 2)}\n`);
}

/** Parses and checks manifest bytes; throws `backup_corrupt` naming the file on any doubt. */
export function parseManifest(id: string, bytes: Buffer): BackupManifest {
  const corrupt = (why: string) =>
    new AthanorError(
      'backup_corrupt',
      `backup ${id}: manifest.json is corrupt (${why}); this backup cannot be trusted, use another one`,
      { details: { backupId: id, files: ['manifest.json'] } },
    );
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt('not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw corrupt('not an object');
  if (`${JSON.stringify(parsed, null, 2)}\n` !== text) throw corrupt('not in its written form');
  const { manifestSha256, ...body } = parsed as Record<string, unknown>;
  if (typeof manifestSha256 !== 'string' || sha256(JSON.stringify(body, null, 2)) !== manifestSha256) {
    throw corrupt('its checksum does not match');
  }
  const manifest = body as unknown as BackupManifest;
  if (manifest.format !== backupFormat) throw corrupt(`format '${String(manifest.format)}'`);
  if (typeof manifest.formatVersion !== 'number' || manifest.formatVersion > backupFormatVersion) {
    throw new AthanorError(
      'backup_incompatible',
      `backup ${id} uses backup format ${String(manifest.formatVersion)}, newer than this release reads ` +
        `(${backupFormatVersion}): use the Athanor release that wrote it (${String(manifest.appVersion)}) or newer`,
    );
  }
  if (manifest.id !== id) throw corrupt(`it names backup ${String(manifest.id)}`);
  return manifest;
}
