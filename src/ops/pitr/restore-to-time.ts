import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import { hasBlob, putBlob } from '../../objects/blob-store.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import { sqliteDatabaseUrl } from '../../domain/database-url.js';
import { openStore } from '../../store/open-store.js';
import { createBackup } from '../backup/create-backup.js';
import type { DecryptionKeys, EncryptionSettings } from '../backup/encryption.js';
import { prepareDecryption } from '../backup/encryption.js';
import { readObject } from '../backup/backup-target.js';
import type { RestoreResult } from '../backup/restore-backup.js';
import { restoreBackup } from '../backup/restore-backup.js';
import { blobTargetPath, listGenerations, replicaKeys } from './replica-layout.js';
import type { ReplicaPoint } from './sqlite-replica-restore.js';
import { rebuildReplica } from './sqlite-replica-restore.js';

/** A `--to-time` value: ISO 8601 with a zone; in the future is refused. */
export function parsePointInTime(text: string, now: Date = new Date(), flag = '--to-time'): Date {
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
  const at = new Date(text);
  if (!iso.test(text.trim()) || Number.isNaN(at.getTime())) {
    throw new AthanorError(
      'invalid_argument',
      `${flag} '${text}' is not an ISO 8601 time with a zone, like 2026-12-07T10:59:00Z`,
    );
  }
  if (at.getTime() > now.getTime() + 1000) {
    throw new AthanorError(
      'invalid_argument',
      `${flag} ${at.toISOString()} is in the future (it is ${now.toISOString()}): nothing has been written then yet`,
    );
  }
  return at;
}

export interface BlobCheck {
  /** Blobs the restored database references that the object store holds. */
  readonly present: number;
  /** Copied into the object store from the backup target. */
  readonly copied: number;
  /** Referenced but found nowhere: their results cannot be downloaded. */
  readonly missing: readonly string[];
  /** Attempt logs found nowhere (a replica does not carry them; snapshots do): reported, not fatal. */
  readonly missingLogs: readonly string[];
}

export interface PointInTimeRestoreResult extends ReplicaPoint {
  readonly database: string;
  readonly rows: number;
  readonly tables: number;
  readonly schemaVersion: number;
  readonly blobs: BlobCheck;
  readonly safetyBackupId?: string;
  readonly durationMs: number;
}

/** A blob from the object store, or from the target where a replica or the snapshots keep it. */
async function findBlobAtTarget(
  target: ObjectStore,
  sha256: string,
  openers: readonly {
    recipients: readonly string[] | undefined;
    decrypt?: (raw: Readable) => Promise<Readable>;
  }[],
): Promise<Readable | undefined> {
  for (const opener of openers) {
    for (const root of [replicaKeys.blobsRoot, '']) {
      const key = `${root}${blobTargetPath(sha256, opener.recipients)}${opener.recipients ? '.age' : ''}`;
      const alt = `${root}${blobTargetPath(sha256, opener.recipients)}`;
      for (const candidate of [key, alt]) {
        if (!(await target.head(candidate))) continue;
        const raw = await target.get(candidate);
        return opener.decrypt ? opener.decrypt(raw) : raw;
      }
    }
  }
  return undefined;
}

/**
 * Checks that every blob the restored database references is in the object store, copying the
 * absent ones from the backup target (the replica's copies, then the snapshots').
 */
export async function restoreReferencedBlobs(options: {
  readonly config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>;
  readonly objects: ObjectStore;
  readonly target: ObjectStore;
  readonly keys: DecryptionKeys;
}): Promise<BlobCheck> {
  const store = await openStore(options.config);
  let shas: string[];
  let logShas: string[];
  try {
    const results = await store.db
      .selectFrom('results')
      .select('blob_sha256')
      .distinct()
      .where('blob_sha256', 'is not', null)
      // A small result's bytes are in its row: it has a digest but no blob.
      .where('body', 'is', null)
      .execute();
    const logs = await store.db
      .selectFrom('task_attempts')
      .select('log_sha256')
      .distinct()
      .where('log_sha256', 'is not', null)
      .execute();
    shas = [...new Set(results.map((r) => r.blob_sha256 as string))];
    logShas = [...new Set(logs.map((l) => l.log_sha256 as string))].filter((sha) => !shas.includes(sha));
  } finally {
    await store.close();
  }
  const generations = await listGenerations(options.target);
  const openers: {
    recipients: readonly string[] | undefined;
    decrypt?: (raw: Readable) => Promise<Readable>;
  }[] = [{ recipients: undefined }];
  const encryptedTo = generations.find((g) => g.encryption.mode !== 'none');
  if (encryptedTo) {
    const keyFile =
      encryptedTo.encryption.mode === 'passphrase'
        ? await readObject(options.target, replicaKeys.keyFile, 1024 * 1024)
        : undefined;
    const decrypter = await prepareDecryption(
      {
        id: `replica ${encryptedTo.generation}`,
        recipients: encryptedTo.encryption.recipients,
        ...(keyFile ? { keyFile } : {}),
      },
      options.keys,
    );
    openers.unshift({
      recipients: encryptedTo.encryption.recipients,
      decrypt: (raw) => decrypter.decrypt(raw),
    });
  }
  let present = 0;
  let copied = 0;
  const missing: string[] = [];
  const missingLogs: string[] = [];
  const bring = async (sha: string, absent: string[]) => {
    if (await hasBlob(options.objects, sha)) {
      present += 1;
      return;
    }
    const found = await findBlobAtTarget(options.target, sha, openers);
    if (!found) {
      absent.push(sha);
      return;
    }
    const stored = await putBlob(options.objects, found);
    if (stored.sha256 !== sha) {
      throw new AthanorError(
        'backup_corrupt',
        `the copy of blob ${sha} at ${options.target.url} does not match its sha256`,
      );
    }
    copied += 1;
  };
  for (const sha of shas) await bring(sha, missing);
  for (const sha of logShas) await bring(sha, missingLogs);
  return { present, copied, missing, missingLogs };
}

export interface RestoreToTimeOptions {
  readonly target: ObjectStore;
  readonly toTime: Date;
  readonly config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs' | 'lockTimeoutMs' | 'objectsUrl'>;
  readonly keys: DecryptionKeys;
  /** Replace a database holding data, after a safety backup of it to the target. */
  readonly force?: boolean;
  readonly safetyBackupEncryption?: EncryptionSettings;
  readonly actor?: string;
}

/**
 * Restores the SQLite replica at the target as it was at `toTime` into the configured database
 * (either backend): the rebuilt file is loaded as a backup is, atomically and migrated forward,
 * and every result blob it references is then checked and, when absent, copied from the target.
 */
export async function restoreReplicaToTime(options: RestoreToTimeOptions): Promise<PointInTimeRestoreResult> {
  const started = performance.now();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'athanor-pitr-'));
  try {
    const rebuilt = path.join(scratch, 'rebuilt.db');
    const point = await rebuildReplica({
      target: options.target,
      toTime: options.toTime,
      keys: options.keys,
      outFile: rebuilt,
    });
    let safetyBackupId: string | undefined;
    if (options.force) {
      try {
        const safety = await createBackup({
          config: options.config,
          target: options.target,
          encryption: options.safetyBackupEncryption ?? { mode: 'none' },
          reason: `pre-restore to ${options.toTime.toISOString()}`,
          ...(options.actor ? { actor: options.actor } : {}),
        });
        safetyBackupId = safety.manifest.id;
      } catch (error) {
        // No database yet: nothing to keep.
        if (!isAthanorError(error) || error.code !== 'database_unavailable') throw error;
      }
    }
    // The rebuilt file goes through a snapshot so that it loads as any backup does: atomically,
    // into either backend, migrated forward, with the stored JWT secrets left out.
    const staging = openObjectStore(`file:${path.join(scratch, 'staging')}`);
    await createBackup({
      config: { databaseUrl: sqliteDatabaseUrl(rebuilt), busyTimeoutMs: options.config.busyTimeoutMs },
      target: staging,
      encryption: { mode: 'none' },
      reason: `point in time ${options.toTime.toISOString()}`,
      ...(options.actor ? { actor: options.actor } : {}),
    });
    const restored: RestoreResult = await restoreBackup({
      target: staging,
      backup: 'latest',
      config: {
        databaseUrl: options.config.databaseUrl,
        busyTimeoutMs: options.config.busyTimeoutMs,
        lockTimeoutMs: options.config.lockTimeoutMs,
      },
      keys: { identities: [], passphrases: [] },
      ...(options.force ? { force: true, safetyBackupEncryption: { mode: 'none' } as const } : {}),
      ...(options.actor ? { actor: options.actor } : {}),
    });
    const blobs = await restoreReferencedBlobs({
      config: options.config,
      objects: openObjectStore(options.config.objectsUrl),
      target: options.target,
      keys: options.keys,
    });
    return {
      ...point,
      database: restored.database,
      rows: restored.rows,
      tables: restored.tables,
      schemaVersion: restored.schemaVersion,
      blobs,
      ...(safetyBackupId ? { safetyBackupId } : {}),
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
