import type { Readable } from 'node:stream';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { backupIdTime, isBackupId } from './backup-id.js';
import type { BackupManifest } from './manifest.js';
import { parseManifest } from './manifest.js';

/** Where each piece of a backup target lives; see docs/backup-format.md. */
export const targetKeys = {
  manifest: (id: string) => `${id}/manifest.json`,
  file: (id: string, path: string) => `${id}/${path}`,
  verification: (id: string, mode: VerificationMode) =>
    mode === 'full' ? `${id}/verify.json` : `${id}/verify-quick.json`,
  lease: 'locks/writer.json',
  takeover: (token: string) => `locks/takeover-${token}`,
  marker: 'athanor-backup-target.json',
} as const;

export type VerificationMode = 'quick' | 'full';

/** `verify.json` / `verify-quick.json`: the last verification of a backup, kept beside it. */
export interface VerificationRecord {
  readonly backupId: string;
  readonly mode: VerificationMode;
  readonly ok: boolean;
  readonly verifiedAt: string;
  readonly durationMs: number;
  readonly appVersion: string;
  readonly problems: readonly { readonly file: string; readonly problem: string }[];
  readonly rows?: number;
}

/** One backup found at a target. */
export interface BackupEntry {
  readonly id: string;
  readonly createdAt: Date;
  /** Undefined when the manifest cannot be trusted; `problem` then says why. */
  readonly manifest?: BackupManifest;
  readonly problem?: string;
  readonly verification?: VerificationRecord;
  readonly quickVerification?: VerificationRecord;
}

export async function readObject(
  store: ObjectStore,
  key: string,
  limitBytes = 64 * 1024 * 1024,
): Promise<Buffer> {
  const stream: Readable = await store.get(key);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) {
      stream.destroy();
      throw new AthanorError('backup_corrupt', `${store.url}/${key} is larger than ${limitBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readOptionalJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  try {
    return JSON.parse((await readObject(store, key)).toString('utf8')) as T;
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found') return undefined;
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

export async function readManifest(store: ObjectStore, id: string): Promise<BackupManifest> {
  let bytes: Buffer;
  try {
    bytes = await readObject(store, targetKeys.manifest(id));
  } catch (error) {
    if (isAthanorError(error) && error.code === 'not_found') {
      throw new AthanorError(
        'backup_not_found',
        `there is no complete backup ${id} at ${store.url}: 'athanor backup list' shows the ones there are`,
      );
    }
    throw error;
  }
  return parseManifest(id, bytes);
}

export async function readVerification(
  store: ObjectStore,
  id: string,
  mode: VerificationMode,
): Promise<VerificationRecord | undefined> {
  return readOptionalJson<VerificationRecord>(store, targetKeys.verification(id, mode));
}

/** Every backup directory at the target, complete or not, with the keys it holds. */
export async function scanTarget(store: ObjectStore): Promise<Map<string, string[]>> {
  const directories = new Map<string, string[]>();
  for await (const object of store.list('')) {
    // Backup ids start with a digit and keys come in byte order: past the digits lie only the
    // marker, the locks and the shared blobs (often most of the target), none of them a backup.
    if (object.key.charAt(0) > '9') break;
    const slash = object.key.indexOf('/');
    if (slash < 0) continue;
    const id = object.key.slice(0, slash);
    if (!isBackupId(id)) continue;
    const keys = directories.get(id) ?? [];
    keys.push(object.key);
    directories.set(id, keys);
  }
  return directories;
}

/**
 * The backups at a target, oldest first. A directory without `manifest.json` is a backup that
 * never finished (or is still being written) and is not listed.
 */
export async function listBackups(store: ObjectStore): Promise<BackupEntry[]> {
  const entries: BackupEntry[] = [];
  for (const [id, keys] of await scanTarget(store)) {
    if (!keys.includes(targetKeys.manifest(id))) continue;
    const createdAt = backupIdTime(id) as Date;
    const [verification, quickVerification] = await Promise.all([
      keys.includes(targetKeys.verification(id, 'full')) ? readVerification(store, id, 'full') : undefined,
      keys.includes(targetKeys.verification(id, 'quick')) ? readVerification(store, id, 'quick') : undefined,
    ]);
    const extra = {
      ...(verification ? { verification } : {}),
      ...(quickVerification ? { quickVerification } : {}),
    };
    try {
      entries.push({ id, createdAt, manifest: await readManifest(store, id), ...extra });
    } catch (error) {
      if (!isAthanorError(error) || !['backup_corrupt', 'backup_incompatible'].includes(error.code))
        throw error;
      entries.push({ id, createdAt, problem: error.message, ...extra });
    }
  }
  return entries.sort((a, b) => a.id.localeCompare(b.id));
}

/** Resolves `latest` (the newest complete backup with a sound manifest) or checks an id. */
export async function resolveBackupId(store: ObjectStore, idOrLatest: string): Promise<string> {
  if (idOrLatest !== 'latest') {
    if (!isBackupId(idOrLatest)) {
      throw new AthanorError(
        'invalid_argument',
        `'${idOrLatest}' is not a backup id (like 20261122T013000Z-a1b2c3) or 'latest'`,
      );
    }
    return idOrLatest;
  }
  const sound = (await listBackups(store)).filter((b) => b.manifest !== undefined);
  const latest = sound.at(-1);
  if (!latest) {
    throw new AthanorError(
      'backup_not_found',
      `there is no complete backup at ${store.url}: take one with 'athanor backup create'`,
    );
  }
  return latest.id;
}

/** Every key under one backup's directory. */
export async function backupKeys(store: ObjectStore, id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(`${id}/`)) keys.push(object.key);
  return keys;
}

/** Deletes a backup: its manifest first, so it stops being a backup before its files go. */
export async function deleteBackup(store: ObjectStore, id: string, keys?: readonly string[]): Promise<void> {
  await store.delete(targetKeys.manifest(id));
  const all = keys ?? (await backupKeys(store, id));
  for (const key of all) if (key !== targetKeys.manifest(id)) await store.delete(key);
}
