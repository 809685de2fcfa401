import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError, errorFacts } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import { osActor } from '../../service/audit.js';
import { appVersion } from '../../version.js';
import { auditBackupEvent } from './backup-audit.js';
import { newBackupId } from './backup-id.js';
import { mapLimited } from '../../domain/map-limited.js';
import type { PackedBlobCopy, PackedBlobs } from './blob-packs.js';
import { startPackedBlobCopy } from './blob-packs.js';
import { backupKeys, listBackups, readObject, targetKeys } from './backup-target.js';
import { readCheckedFile } from './read-archive.js';
import { compressionExtension, createCompressor, defaultCompression } from './compression.js';
import type { EncryptionSettings, StreamEncrypter } from './encryption.js';
import { prepareEncryption } from './encryption.js';
import { backupEnv } from './backup-env.js';
import type {
  BackupManifest,
  ManifestEncryption,
  ManifestFile,
  ManifestMigration,
  ManifestTable,
} from './manifest.js';
import { backupFormat, backupFormatVersion, serializeManifest } from './manifest.js';
import { openSnapshot } from './open-snapshot.js';
import type { Row, Snapshot, TableSchema } from './snapshot.js';
import { lineEncoder } from './snapshot.js';
import { ByteMeter, chain } from './streams.js';
import { acquireTargetLease } from './target-lease.js';
import { BackupTarget } from './target.js';
import { isSecretRow, withoutSecretRows } from './secret-rows.js';

/** Default uncompressed size of one table chunk file: 64 MiB. */
export const defaultChunkBytes = 64 * 1024 * 1024;

export interface BackupProgress {
  readonly table: string;
  readonly tableIndex: number;
  readonly tableCount: number;
  /** Rows of this table written so far. */
  readonly rows: number;
  readonly tableDone: boolean;
}

export interface CreateBackupOptions {
  /** The database; with `objectsUrl`, the result blobs its results reference are backed up too. */
  readonly config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'> & { readonly objectsUrl?: string };
  readonly target: ObjectStore;
  /** The object store holding result blobs; default the one `config.objectsUrl` names. */
  readonly objects?: ObjectStore;
  /** Where the audit log says the backup went; default the target's URL. */
  readonly auditTarget?: string;
  readonly encryption: EncryptionSettings;
  /** Uncompressed bytes per chunk file; default 64 MiB. */
  readonly chunkBytes?: number;
  /** Plaintext blob bytes per pack file; default 256 MiB. */
  readonly packBytes?: number;
  /** Why the backup is taken, recorded in the manifest; default `manual`. */
  readonly reason?: string;
  /** Who takes it, for the audit log and the lease; default the OS user@host. */
  readonly actor?: string;
  /** Writer lease TTL; default 120000 ms. */
  readonly leaseTtlMs?: number;
  readonly now?: () => Date;
  readonly onProgress?: (progress: BackupProgress) => void;
}

export interface BackupResult {
  readonly manifest: BackupManifest;
  readonly targetUrl: string;
}

/** The target remembers that it holds encrypted backups, so a missing key is refused, not ignored. */
interface TargetMarker {
  readonly format: 'athanor-backup-target';
  readonly encrypted: boolean;
  readonly updatedAt: string;
}

async function reconcileTargetMarker(
  target: ObjectStore,
  encryption: EncryptionSettings,
  now: Date,
): Promise<void> {
  const encrypted = encryption.mode !== 'none';
  const marker: TargetMarker = { format: 'athanor-backup-target', encrypted, updatedAt: now.toISOString() };
  const bytes = Buffer.from(`${JSON.stringify(marker, null, 2)}\n`);
  if (await target.putIfAbsent(targetKeys.marker, bytes)) return;
  let current: Partial<TargetMarker> = {};
  try {
    current = JSON.parse(
      (await readObject(target, targetKeys.marker, 1024 * 1024)).toString('utf8'),
    ) as TargetMarker;
  } catch {
    // An unreadable marker is rewritten below.
  }
  if (current.encrypted === true && !encrypted) {
    throw new AthanorError(
      'backup_key_missing',
      `backup target ${target.url} holds encrypted backups but no encryption key is configured; refusing to ` +
        `write a plaintext backup. Set ${backupEnv.recipients} or ${backupEnv.passphrase}(_FILE), ` +
        `or use another target`,
    );
  }
  if (current.encrypted !== encrypted) await target.put(targetKeys.marker, bytes);
}

/**
 * Takes an online backup: one consistent snapshot of every table, streamed in chunks to the target,
 * then `manifest.json` last. Holds the target's writer lease throughout; audited.
 */
export async function createBackup(options: CreateBackupOptions): Promise<BackupResult> {
  const now = options.now ?? (() => new Date());
  const actor = options.actor ?? osActor();
  const target = BackupTarget.of(options.target);
  const startedAt = now();
  const started = performance.now();
  const id = newBackupId(startedAt);
  const auditEvent = { actor, action: 'backup.create', target: `${options.auditTarget ?? target.url} ${id}` };
  let manifest: BackupManifest;
  try {
    const lease = await acquireTargetLease(target, {
      operation: 'backup',
      backupId: id,
      actor,
      ...(options.leaseTtlMs !== undefined ? { ttlMs: options.leaseTtlMs } : {}),
      now,
    });
    try {
      manifest = await writeBackup(id, startedAt, started, { ...options, target });
      await lease.assertHeld();
      await target.put(targetKeys.manifest(id), serializeManifest(manifest));
    } catch (error) {
      await removePartialBackup(target, id);
      throw error;
    } finally {
      await lease.release();
    }
  } catch (error) {
    const facts = errorFacts(error);
    await auditBackupEvent(
      options.config,
      { ...auditEvent, outcome: 'error', details: { backupId: id, ...facts } },
      { target: options.auditTarget ?? target.url, backupId: id, ...facts },
    );
    throw error;
  }
  await auditBackupEvent(options.config, {
    ...auditEvent,
    outcome: 'ok',
    details: {
      backupId: id,
      reason: manifest.reason,
      rows: manifest.totals.rows,
      sizeBytes: manifest.totals.sizeBytes,
      encrypted: manifest.encryption.mode !== 'none',
      durationMs: manifest.timings.durationMs,
    },
  });
  return { manifest, targetUrl: target.url };
}

async function removePartialBackup(target: ObjectStore, id: string): Promise<void> {
  try {
    for (const key of await backupKeys(target, id)) await target.delete(key);
  } catch {
    // Left-overs without a manifest are not a backup; prune removes them.
  }
}

async function writeBackup(
  id: string,
  startedAt: Date,
  started: number,
  options: CreateBackupOptions,
): Promise<BackupManifest> {
  const { target, encryption } = options;
  const now = options.now ?? (() => new Date());
  await reconcileTargetMarker(target, encryption, startedAt);
  const compression = defaultCompression;
  const files: ManifestFile[] = [];
  let encrypter: StreamEncrypter | undefined;
  let manifestEncryption: ManifestEncryption = { mode: 'none' };
  if (encryption.mode !== 'none') {
    const prepared = await prepareEncryption(
      encryption,
      encryption.mode === 'passphrase' ? await previousPassphraseKey(target) : undefined,
    );
    encrypter = prepared.encrypter;
    if (prepared.keyFile) {
      const { sizeBytes } = await target.put(targetKeys.file(id, 'key.age'), prepared.keyFile);
      files.push({
        path: 'key.age',
        sizeBytes,
        sha256: createHash('sha256').update(prepared.keyFile).digest('hex'),
      });
      manifestEncryption = { mode: 'passphrase', keyFile: 'key.age', recipients: prepared.recipients };
    } else {
      manifestEncryption = { mode: 'recipients', recipients: prepared.recipients };
    }
  }

  const writeFile = async (path: string, source: Readable): Promise<ManifestFile> => {
    const compressed = chain(source, createCompressor(compression));
    const stored = encrypter ? await encrypter.encrypt(compressed) : compressed;
    const meter = new ByteMeter();
    const body = chain(stored, meter);
    try {
      const { sizeBytes } = await target.put(targetKeys.file(id, path), body);
      if (sizeBytes !== meter.sizeBytes) {
        throw new AthanorError(
          'internal',
          `${target.url} stored ${sizeBytes} bytes of ${path}, sent ${meter.sizeBytes}`,
        );
      }
      return { path, sizeBytes, sha256: meter.sha256 };
    } catch (error) {
      source.destroy();
      throw error;
    }
  };

  const snapshotStarted = performance.now();
  const snapshot = await openSnapshot(options.config.databaseUrl, options.config);
  const snapshotMs = Math.round(performance.now() - snapshotStarted);
  const tables: ManifestTable[] = [];
  const migrations: ManifestMigration[] = [];
  const objects =
    options.objects ?? (options.config.objectsUrl ? openObjectStore(options.config.objectsUrl) : undefined);
  let blobCopy: PackedBlobCopy | undefined;
  try {
    // Blobs are packed while the tables are still being read: each as soon as a row references it.
    blobCopy = objects
      ? await startPackedBlobCopy({
          backupId: id,
          objects,
          target,
          compression,
          encrypter,
          recipients: manifestEncryption.mode === 'none' ? undefined : manifestEncryption.recipients,
          previous: await previousManifest(target),
          ...(options.packBytes !== undefined ? { packBytes: options.packBytes } : {}),
        })
      : undefined;
    const extension = `ndjson.${compressionExtension[compression]}${encrypter ? '.age' : ''}`;
    // Tables are read (and compressed, on zlib's thread pool) several at a time when the snapshot
    // allows it; the manifest lists them, and their files, in dependency order all the same.
    const tableFiles = snapshot.tables.map((): ManifestFile[] => []);
    const written = await mapLimited(snapshot.tables, snapshot.parallelTables, (table, index) =>
      writeTable(snapshot, table, {
        extension,
        chunkBytes: options.chunkBytes ?? defaultChunkBytes,
        writeFile: async (path, source) => {
          const file = await writeFile(path, source);
          tableFiles[index]?.push(file);
          return file;
        },
        onRow:
          table.name === 'athanor_migrations'
            ? (row) =>
                migrations.push({
                  id: Number(row.id),
                  name: String(row.name),
                  checksum: String(row.checksum),
                })
            : table.name === 'results'
              ? (row) => {
                  // A result stored inline (migration 9) travels in its row: no blob to copy.
                  if (typeof row.blob_sha256 === 'string' && (row.body ?? null) === null)
                    blobCopy?.add(row.blob_sha256, Number(row.size_bytes ?? 0));
                }
              : table.name === 'task_attempts'
                ? (row) => {
                    // Attempt logs are blobs too (from migration 7 on).
                    if (typeof row.log_sha256 === 'string')
                      blobCopy?.add(row.log_sha256, Number(row.log_size_bytes ?? 0));
                  }
                : undefined,
        onProgress: (rows, tableDone) =>
          options.onProgress?.({
            table: table.name,
            tableIndex: index,
            tableCount: snapshot.tables.length,
            rows,
            tableDone,
          }),
      }),
    );
    tables.push(...written);
    files.push(...tableFiles.flat());
  } catch (error) {
    await blobCopy?.abandon();
    throw error;
  } finally {
    await snapshot.close();
  }
  let copied: PackedBlobs | undefined;
  try {
    copied = await blobCopy?.finish();
  } catch (error) {
    await blobCopy?.abandon();
    throw error;
  }
  const completedAt = now();
  migrations.sort((a, b) => a.id - b.id);
  return {
    format: backupFormat,
    formatVersion: backupFormatVersion,
    id,
    reason: options.reason ?? 'manual',
    appVersion,
    backend: snapshot.backend,
    schema: { version: migrations.at(-1)?.id ?? 0, migrations },
    snapshot: { takenAt: snapshot.takenAt, point: snapshot.point },
    compression,
    encryption: manifestEncryption,
    tables,
    files,
    ...(copied ? { packs: copied.packs, blobCount: copied.blobCount, missingBlobs: copied.missing } : {}),
    totals: {
      rows: tables.reduce((sum, t) => sum + t.rowCount, 0),
      files: files.length,
      sizeBytes: files.reduce((sum, f) => sum + f.sizeBytes, 0),
    },
    timings: {
      startedAt: startedAt.toISOString(),
      completedAt: completedAt.toISOString(),
      snapshotMs,
      durationMs: Math.round(performance.now() - started),
    },
  };
}

/** The newest backup at the target whose manifest can be read and lists packs, if any. */
async function previousManifest(target: ObjectStore): Promise<BackupManifest | undefined> {
  const backups = await listBackups(target);
  return backups.reverse().find((entry) => entry.manifest?.packs)?.manifest;
}

/**
 * The key file of the newest passphrase-encrypted backup at the target: a new backup reuses its
 * key when the passphrase still opens it, so backups under one passphrase share their result blobs.
 */
async function previousPassphraseKey(target: ObjectStore): Promise<Buffer | undefined> {
  const backups = await listBackups(target);
  for (const entry of backups.reverse()) {
    const encryption = entry.manifest?.encryption;
    if (encryption?.mode !== 'passphrase') continue;
    const file = entry.manifest?.files.find((f) => f.path === encryption.keyFile);
    if (!file || !entry.manifest) continue;
    return readCheckedFile(target, entry.manifest, file).catch(() => undefined);
  }
  return undefined;
}

const lineBatchBytes = 64 * 1024;
const progressEveryRows = 1000;
const lineFeed = 0x0a;

function countLines(block: Buffer): number {
  let count = 0;
  for (let at = block.indexOf(lineFeed); at !== -1; at = block.indexOf(lineFeed, at + 1)) count += 1;
  return count;
}

/**
 * The table's NDJSON lines in blocks of whole lines, each row handed to `onRow` and the secret rows
 * left out. Lines the database writes itself are parsed here only where a row must be looked at.
 */
async function* tableBlocks(
  snapshot: Snapshot,
  table: TableSchema,
  onRow: ((row: Row) => void) | undefined,
): AsyncGenerator<Buffer> {
  const secrets = table.name === 'settings';
  if (snapshot.lines) {
    for await (const block of snapshot.lines(table)) {
      if (!onRow && !secrets) {
        yield block;
        continue;
      }
      const lines = block.toString('utf8').split('\n');
      lines.pop();
      let text = '';
      for (const line of lines) {
        const row = JSON.parse(line) as Row;
        if (secrets && isSecretRow(table.name, row)) continue;
        onRow?.(row);
        text += `${line}\n`;
      }
      if (text !== '') yield Buffer.from(text);
    }
    return;
  }
  const encode = lineEncoder(table.columns.map((c) => c.name));
  let text = '';
  for await (const batch of withoutSecretRows(table.name, snapshot.batches(table))) {
    for (const row of batch) {
      text += `${encode(row)}\n`;
      onRow?.(row);
      if (text.length >= lineBatchBytes) {
        yield Buffer.from(text);
        text = '';
      }
    }
  }
  if (text !== '') yield Buffer.from(text);
}

async function writeTable(
  snapshot: Snapshot,
  table: TableSchema,
  context: {
    readonly extension: string;
    readonly chunkBytes: number;
    readonly writeFile: (path: string, source: Readable) => Promise<ManifestFile>;
    readonly onRow: ((row: Row) => void) | undefined;
    readonly onProgress: (rows: number, tableDone: boolean) => void;
  },
): Promise<ManifestTable> {
  const content = createHash('sha256');
  const chunks: string[] = [];
  let rowCount = 0;
  const iterator = tableBlocks(snapshot, table, context.onRow);
  // Lines not yet written: the rest of the block the last chunk stopped in.
  let pending: Buffer | undefined;
  let done = false;
  const fill = async () => {
    while (!pending && !done) {
      const next = await iterator.next();
      if (next.done) done = true;
      else if (next.value.length > 0) pending = next.value;
    }
  };
  try {
    await fill();
    while (pending) {
      const path = `tables/${encodeURIComponent(table.name)}.${chunks.length}.${context.extension}`;
      // Lines flow from the snapshot straight into the compressor: at most a block of them is in
      // memory, and a chunk ends at the first row past the size limit.
      async function* chunkLines(): AsyncGenerator<Buffer> {
        let chunkBytes = 0;
        while (pending && chunkBytes < context.chunkBytes) {
          let block: Buffer = pending;
          pending = undefined;
          if (chunkBytes + block.length > context.chunkBytes) {
            const end = block.indexOf(lineFeed, context.chunkBytes - chunkBytes - 1) + 1;
            if (end < block.length) pending = block.subarray(end);
            block = block.subarray(0, end);
          }
          const first = rowCount;
          rowCount += countLines(block);
          chunkBytes += block.length;
          content.update(block);
          yield block;
          if (Math.floor(rowCount / progressEveryRows) > Math.floor(first / progressEveryRows))
            context.onProgress(rowCount, false);
          await fill();
        }
      }
      await context.writeFile(path, Readable.from(chunkLines(), { objectMode: false }));
      chunks.push(path);
    }
  } finally {
    await iterator.return(undefined);
  }
  context.onProgress(rowCount, true);
  return {
    name: table.name,
    columns: table.columns,
    primaryKey: table.primaryKey,
    rowCount,
    contentSha256: content.digest('hex'),
    chunks,
  };
}
