import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { readObject, targetKeys } from './backup-target.js';
import { createDecompressor } from './compression.js';
import type { DecryptionKeys, StreamDecrypter } from './encryption.js';
import { prepareDecryption } from './encryption.js';
import type { BackupManifest, ManifestFile, ManifestTable } from './manifest.js';
import type { Row, RowValue } from './snapshot.js';
import { chain, lines } from './streams.js';

/** Reads the rows of a backup, checking every byte against its manifest. */
export interface ArchiveReader {
  readonly manifest: BackupManifest;
  /**
   * The rows of one table in backup order. Each chunk file is read whole and checked against the
   * manifest's size and sha256 before any of its rows is returned; the table's row count and
   * content checksum are checked after its last row.
   */
  rows(table: ManifestTable): AsyncGenerator<Row>;
  /** Opens the backup's encrypted files (its result blobs too); undefined when not encrypted. */
  readonly decrypter: StreamDecrypter | undefined;
}

export function corruptFile(id: string, file: string, problem: string, cause?: unknown): AthanorError {
  return new AthanorError(
    'backup_corrupt',
    `backup ${id}: ${file} ${problem}; this backup cannot be restored, use another one ('athanor backup list')`,
    { ...(cause === undefined ? {} : { cause }), details: { backupId: id, files: [file], problem } },
  );
}

/** Reads one stored file whole and checks it against the manifest; throws `backup_corrupt` naming it. */
export async function readCheckedFile(
  store: ObjectStore,
  manifest: BackupManifest,
  file: ManifestFile,
): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readObject(store, targetKeys.file(manifest.id, file.path), file.sizeBytes + 1);
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found')
      throw corruptFile(manifest.id, file.path, 'is missing');
    if (isAthanorError(error) && error.code === 'backup_corrupt') {
      throw corruptFile(
        manifest.id,
        file.path,
        `is larger than the ${file.sizeBytes} bytes the manifest records`,
      );
    }
    throw error;
  }
  if (bytes.length !== file.sizeBytes) {
    throw corruptFile(
      manifest.id,
      file.path,
      `has ${bytes.length} bytes, the manifest records ${file.sizeBytes}`,
    );
  }
  if (createHash('sha256').update(bytes).digest('hex') !== file.sha256) {
    throw corruptFile(manifest.id, file.path, 'does not match its sha256 in the manifest');
  }
  return bytes;
}

export async function openArchive(
  store: ObjectStore,
  manifest: BackupManifest,
  keys: DecryptionKeys,
): Promise<ArchiveReader> {
  const files = new Map(manifest.files.map((f) => [f.path, f]));
  const fileEntry = (path: string): ManifestFile => {
    const file = files.get(path);
    if (!file)
      throw corruptFile(manifest.id, 'manifest.json', `lists chunk ${path} without its size and checksum`);
    return file;
  };
  let decrypter: StreamDecrypter | undefined;
  const encryption = manifest.encryption;
  if (encryption.mode !== 'none') {
    const keyFile =
      encryption.mode === 'passphrase'
        ? await readCheckedFile(store, manifest, fileEntry(encryption.keyFile))
        : undefined;
    decrypter = await prepareDecryption(
      { id: manifest.id, recipients: encryption.recipients, ...(keyFile ? { keyFile } : {}) },
      keys,
    );
  }

  async function* rows(table: ManifestTable): AsyncGenerator<Row> {
    const content = createHash('sha256');
    let rowCount = 0;
    for (const path of table.chunks) {
      const stored = await readCheckedFile(store, manifest, fileEntry(path));
      const compressed = decrypter ? await decrypter.decrypt(stored) : Readable.from([stored]);
      const plain = chain(compressed, createDecompressor(manifest.compression));
      try {
        for await (const line of lines(plain)) {
          content.update(`${line}\n`);
          rowCount += 1;
          yield parseRow(line);
        }
      } catch (error) {
        if (isAthanorError(error)) throw error;
        // The bytes matched the manifest, so the file was written this way: unreadable, not altered.
        throw corruptFile(manifest.id, path, `cannot be read (${(error as Error).message})`, error);
      }
    }
    if (rowCount !== table.rowCount) {
      throw corruptFile(
        manifest.id,
        `table ${table.name}`,
        `holds ${rowCount} rows, the manifest records ${table.rowCount}`,
      );
    }
    if (content.digest('hex') !== table.contentSha256) {
      throw corruptFile(
        manifest.id,
        `table ${table.name}`,
        'does not match its content checksum in the manifest',
      );
    }
  }

  return { manifest, rows, decrypter };
}

function parseRow(line: string): Row {
  const value = JSON.parse(line) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('a line is not a JSON object');
  }
  for (const v of Object.values(value)) {
    if (v !== null && typeof v !== 'string' && typeof v !== 'number')
      throw new Error('a value is not text, number or null');
  }
  return value as Readonly<Record<string, RowValue>>;
}
