import type { FileHandle } from 'node:fs/promises';
import { link, lstat, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Pack } from 'tar-stream';
import { AthanorError } from '../../domain/errors.js';
import { FsObjectStore, privateFileMode, syncDirectory } from '../../objects/fs-object-store.js';
import type { ObjectInfo, ObjectStore } from '../../objects/object-store.js';
import { targetKeys } from './backup-target.js';
import type { CreateBackupOptions } from './create-backup.js';
import { createBackup } from './create-backup.js';
import type { BackupManifest } from './manifest.js';

export interface CreateBackupTarOptions extends Omit<CreateBackupOptions, 'target'> {
  /** The tar file to write; refused when anything already exists at this path. */
  readonly output: string;
  /**
   * Runs on the finished backup, at its temporary `file:` target, before it is packed; whatever it
   * adds under the backup's directory (a `verify.json`) is packed too. Default: nothing.
   */
  readonly beforePack?: (target: ObjectStore, manifest: BackupManifest) => Promise<void>;
}

export interface BackupTarResult {
  readonly manifest: BackupManifest;
  /** Absolute path of the tar file. */
  readonly outputPath: string;
  readonly outputSizeBytes: number;
}

/**
 * `backup create --output <file>`: takes a backup exactly as `createBackup` does, into a temporary
 * `file:` target beside the output, and packs it into one tar file that extracts to a valid `file:`
 * target. The tar is written to `<output>.partial`, fsynced and then linked into place, so `<output>`
 * never holds a partial file; the temporary target is removed whether the backup succeeds or not.
 */
export async function createBackupTar(options: CreateBackupTarOptions): Promise<BackupTarResult> {
  const { output: requested, beforePack, ...backupOptions } = options;
  const outputPath = path.resolve(requested);
  const partialPath = `${outputPath}.partial`;
  await assertOutputFree(outputPath);
  const handle = await reservePartial(outputPath, partialPath);
  let published = false;
  let tempDir: string | undefined;
  try {
    // Beside the output, on its filesystem: a backup too big for that disk fails before it is packed,
    // not after.
    tempDir = await mkdtemp(`${outputPath}.tmp-`);
    const target = new FsObjectStore(tempDir);
    const { manifest } = await createBackup({ ...backupOptions, target, auditTarget: outputPath });
    await beforePack?.(target, manifest);
    await writeBackupTar(target, manifest, handle);
    await handle.sync();
    await handle.close();
    await publish(partialPath, outputPath);
    published = true;
    await syncDirectory(path.dirname(outputPath));
    return { manifest, outputPath, outputSizeBytes: (await stat(outputPath)).size };
  } finally {
    await handle.close().catch(() => {});
    if (!published) await rm(partialPath, { force: true });
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  }
}

async function assertOutputFree(outputPath: string): Promise<void> {
  const existing = await lstat(outputPath).catch(() => undefined);
  if (existing) throw outputExists(outputPath);
  const dir = path.dirname(outputPath);
  const parent = await stat(dir).catch(() => undefined);
  if (!parent?.isDirectory()) {
    throw new AthanorError(
      'invalid_argument',
      `cannot write ${outputPath}: ${dir} is not a directory. Create it first or choose another --output path`,
    );
  }
}

function outputExists(outputPath: string): AthanorError {
  return new AthanorError(
    'invalid_argument',
    `${outputPath} already exists: refusing to replace it. Choose another --output path, or move or ` +
      'delete the file first',
  );
}

/** Creates `<output>.partial` exclusively: two runs writing the same output must not share it. */
async function reservePartial(outputPath: string, partialPath: string): Promise<FileHandle> {
  try {
    return await open(partialPath, 'wx', privateFileMode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AthanorError(
        'conflict',
        `${partialPath} exists: another 'athanor backup create --output' is writing ${outputPath}, or one ` +
          `was killed. If none is running, delete ${partialPath} and any ${path.basename(outputPath)}.tmp-* ` +
          'directory beside it, then try again',
        { cause: error },
      );
    }
    throw new AthanorError('invalid_argument', `cannot write ${partialPath}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Publishes the finished tar without replacing a file that appeared at `<output>` while the backup
 * ran: a hard link fails when the name is taken, a rename would not.
 */
async function publish(partialPath: string, outputPath: string): Promise<void> {
  try {
    await link(partialPath, outputPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') throw outputExists(outputPath);
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code)) throw error;
    // A filesystem without hard links (FAT, some network shares): check once more, then rename.
    if (await lstat(outputPath).catch(() => undefined)) throw outputExists(outputPath);
    await rename(partialPath, outputPath);
    return;
  }
  await rm(partialPath, { force: true });
}

/**
 * Streams one backup at `target` into the file `destination` as a tar whose entries are target
 * keys: the target marker, every object of the backup's directory, the result blobs its manifest
 * lists, and `manifest.json` last, so a tar cut short holds no manifest and extracts to no backup.
 */
async function writeBackupTar(
  target: ObjectStore,
  manifest: BackupManifest,
  destination: FileHandle,
): Promise<void> {
  const pack = tar.pack();
  const written = (async () => {
    for await (const chunk of pack) await destination.writeFile(chunk as Buffer);
  })();
  // Handled below; a write error (a full disk) must not surface as an unhandled rejection meanwhile.
  written.catch(() => {});
  try {
    for await (const object of backupObjects(target, manifest)) {
      await addEntry(pack, object, await target.get(object.key));
    }
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
    // When writing failed first, its error says more than the entry that it cut short.
    throw (
      (await written.then(
        () => undefined,
        (writeError: unknown) => writeError,
      )) ?? error
    );
  }
  await written;
}

async function* backupObjects(target: ObjectStore, manifest: BackupManifest): AsyncGenerator<ObjectInfo> {
  const marker = await target.head(targetKeys.marker);
  if (marker) yield marker;
  const manifestKey = targetKeys.manifest(manifest.id);
  let manifestObject: ObjectInfo | undefined;
  for await (const object of target.list(`${manifest.id}/`)) {
    if (object.key === manifestKey) manifestObject = object;
    else yield object;
  }
  const shared = [
    ...(manifest.blobs ?? []).map((b) => b.path),
    ...(manifest.packs ?? []).flatMap((p) => [p.path, p.index.path]),
  ];
  for (const key of shared) {
    const object = await target.head(key);
    if (!object) {
      throw new AthanorError(
        'internal',
        `backup ${manifest.id} lists ${key} but ${target.url} does not hold it; nothing was written`,
      );
    }
    yield object;
  }
  if (!manifestObject) {
    throw new AthanorError('internal', `backup ${manifest.id} has no manifest at ${target.url}`);
  }
  yield manifestObject;
}

/** Appends one object; its size goes into the entry's header before its bytes stream through. */
function addEntry(pack: Pack, object: ObjectInfo, source: Readable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const entry = pack.entry(
      { name: object.key, size: object.sizeBytes, mtime: new Date(object.modifiedAt), mode: privateFileMode },
      (error) => {
        if (!error) resolve();
        else {
          source.destroy();
          reject(error);
        }
      },
    );
    source.once('error', (error) => {
      entry.destroy(error);
      reject(error);
    });
    source.pipe(entry);
  });
}
