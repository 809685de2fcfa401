import path from 'node:path';
import type { Config } from '../../config/resolve-config.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { VerificationRecord } from './backup-target.js';
import type { BackupProgress } from './create-backup.js';
import { createBackup } from './create-backup.js';
import { backupDecryptionKeys, backupEncryption } from './encryption.js';
import type { BackupManifest } from './manifest.js';
import type { BackupTarget } from './target.js';
import { verifyBackup } from './verify-backup.js';

export interface TakeBackupOptions {
  readonly config: Config;
  /** Where it goes: an opened backup target, or `{ output }` for one tar file. */
  readonly destination: { readonly target: BackupTarget } | { readonly output: string };
  /** Uncompressed bytes per chunk file; default 64 MiB. */
  readonly chunkBytes?: number | undefined;
  /** Also restore it into a scratch database and check every row; default false. */
  readonly verify?: boolean | undefined;
  readonly onProgress?: (progress: BackupProgress) => void;
  /** Called once the backup is written and before its verify starts. */
  readonly onVerifyStart?: () => void;
}

export interface TakeBackupResult {
  readonly manifest: BackupManifest;
  /** The target written to; undefined for a tar file. */
  readonly targetUrl: string | undefined;
  /** The tar file written, for `{ output }`. */
  readonly output: { readonly path: string; readonly sizeBytes: number } | undefined;
  /** The verify's verdict, with `verify`. */
  readonly verification: VerificationRecord | undefined;
}

/**
 * `athanor backup create`: a backup to a target or to one tar file, encrypted as the environment
 * says, optionally verified (a tar's backup before packing, so that its verify.json travels in it).
 */
export async function takeBackup(options: TakeBackupOptions): Promise<TakeBackupResult> {
  const { config, destination } = options;
  const encryption = backupEncryption(config);
  const common = {
    config,
    encryption,
    ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  let verification: VerificationRecord | undefined;
  const verify = async (target: ObjectStore, manifest: BackupManifest, auditTarget?: string) => {
    options.onVerifyStart?.();
    verification = await verifyBackup({
      target,
      backup: manifest.id,
      mode: 'full',
      keys: backupDecryptionKeys(config),
      auditConfig: config,
      ...(auditTarget !== undefined ? { auditTarget } : {}),
    });
  };

  if ('output' in destination) {
    const { createBackupTar } = await import('./export-tar.js');
    const result = await createBackupTar({
      ...common,
      output: destination.output,
      // A tar's temporary target is gone afterwards: the audit log names the file instead.
      ...(options.verify
        ? { beforePack: (target, manifest) => verify(target, manifest, path.resolve(destination.output)) }
        : {}),
    });
    return {
      manifest: result.manifest,
      targetUrl: undefined,
      output: { path: result.outputPath, sizeBytes: result.outputSizeBytes },
      verification,
    };
  }
  const { target } = destination;
  const result = await createBackup({ ...common, target });
  if (options.verify) await verify(target, result.manifest);
  return { manifest: result.manifest, targetUrl: result.targetUrl, output: undefined, verification };
}
