import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError, errorFacts, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { osActor } from '../../service/audit.js';
import { sqliteDatabaseUrl } from '../../domain/database-url.js';
import { migrations as releaseMigrations } from '../../store/migrations/index.js';
import type { Migration } from '../../store/migrations/migration.js';
import { appVersion } from '../../version.js';
import { auditBackupEvent } from './backup-audit.js';
import { checkBackupBlob } from './backup-blobs.js';
import { checkPacks } from './blob-packs.js';
import type { VerificationMode, VerificationRecord } from './backup-target.js';
import { readManifest, resolveBackupId, targetKeys } from './backup-target.js';
import type { DecryptionKeys } from './encryption.js';
import { checkRestorable, loadArchive } from './load-archive.js';
import type { BackupManifest } from './manifest.js';
import { openSnapshot } from './open-snapshot.js';
import { snapshotRows } from './snapshot.js';
import { openArchive, readCheckedFile } from './read-archive.js';
import { replaceDatabase } from './replace-database.js';
import { checkSqliteFile } from './snapshot-sqlite.js';

export interface VerifyBackupOptions {
  readonly target: ObjectStore;
  /** A backup id, or `latest`. */
  readonly backup: string;
  /** `quick` re-reads every file against the manifest; `full` also restores into a scratch database. */
  readonly mode: VerificationMode;
  readonly keys: DecryptionKeys;
  /** The configured database, only for the audit log (verify works without one). */
  readonly auditConfig?: Pick<Config, 'databaseUrl' | 'busyTimeoutMs'>;
  /** Where the audit log says the backup is; default the target's URL. */
  readonly auditTarget?: string;
  readonly actor?: string;
  /** Where the scratch database goes; default the OS temp directory. */
  readonly scratchDir?: string;
  readonly migrations?: readonly Migration[];
  readonly onProgress?: (progress: { done: number; total: number; what: string }) => void;
}

export type Problem = VerificationRecord['problems'][number];

/**
 * Verifies a backup and records the verdict beside it (`verify.json`, `verify-quick.json`).
 * Returns the record; `ok: false` names every file found wrong. A missing or wrong key throws: that
 * says nothing about the backup itself.
 */
export async function verifyBackup(options: VerifyBackupOptions): Promise<VerificationRecord> {
  const started = performance.now();
  const actor = options.actor ?? osActor();
  const id = await resolveBackupId(options.target, options.backup);
  const problems: Problem[] = [];
  let rows: number | undefined;
  const collect = (error: unknown): boolean => {
    if (!isAthanorError(error) || error.code !== 'backup_corrupt') return false;
    const files = (error.details?.files as string[] | undefined) ?? ['manifest.json'];
    for (const file of files) problems.push({ file, problem: error.message });
    return true;
  };
  try {
    let manifest: BackupManifest | undefined;
    try {
      manifest = await readManifest(options.target, id);
    } catch (error) {
      if (!collect(error)) throw error;
    }
    if (manifest) {
      if (options.mode === 'quick') {
        for (const [index, file] of manifest.files.entries()) {
          try {
            await readCheckedFile(options.target, manifest, file);
          } catch (error) {
            if (!collect(error)) throw error;
          }
          options.onProgress?.({ done: index + 1, total: manifest.files.length, what: file.path });
        }
        // Without keys, encrypted blobs are checked for presence and size; plaintext ones are hashed.
        const encrypted = manifest.encryption.mode !== 'none';
        for (const blob of manifest.blobs ?? []) {
          const problem = await checkBackupBlob(options.target, blob, undefined, { readContent: !encrypted });
          if (problem) problems.push({ file: blob.path, problem });
        }
        // Packs are checked as stored, against the manifest's sha256: no key needed.
        problems.push(
          ...(await checkPacks(options.target, manifest, undefined, { readContent: false })).problems,
        );
      } else {
        try {
          rows = await restoreIntoScratch(manifest, options, problems);
        } catch (error) {
          if (!collect(error)) throw error;
        }
      }
    }
  } catch (error) {
    if (options.auditConfig) {
      await auditBackupEvent(options.auditConfig, {
        actor,
        action: 'backup.verify',
        target: `${options.auditTarget ?? options.target.url} ${id}`,
        outcome: 'error',
        details: { backupId: id, mode: options.mode, ...errorFacts(error) },
      });
    }
    throw error;
  }
  const record: VerificationRecord = {
    backupId: id,
    mode: options.mode,
    ok: problems.length === 0,
    verifiedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - started),
    appVersion,
    problems,
    ...(rows !== undefined ? { rows } : {}),
  };
  await options.target.put(
    targetKeys.verification(id, options.mode),
    Buffer.from(`${JSON.stringify(record, null, 2)}\n`),
  );
  if (options.auditConfig) {
    await auditBackupEvent(options.auditConfig, {
      actor,
      action: 'backup.verify',
      target: `${options.auditTarget ?? options.target.url} ${id}`,
      outcome: record.ok ? 'ok' : 'error',
      details: { backupId: id, mode: options.mode, ok: record.ok, files: problems.map((p) => p.file) },
    });
  }
  return record;
}

/**
 * Restores the backup at its own schema version into a scratch SQLite file, then reads every table
 * back and compares row counts and content checksums with the manifest: the rows survive a trip
 * through a real database, and foreign keys hold.
 */
async function restoreIntoScratch(
  manifest: BackupManifest,
  options: VerifyBackupOptions,
  problems: Problem[],
): Promise<number> {
  const known = options.migrations ?? releaseMigrations;
  await checkRestorable(manifest, known);
  const archive = await openArchive(options.target, manifest, options.keys);
  for (const [index, blob] of (manifest.blobs ?? []).entries()) {
    const problem = await checkBackupBlob(options.target, blob, archive.decrypter, { readContent: true });
    if (problem) problems.push({ file: blob.path, problem });
    options.onProgress?.({ done: index + 1, total: manifest.blobs?.length ?? 0, what: 'result blobs' });
  }
  const packed = await checkPacks(options.target, manifest, archive.decrypter, { readContent: true });
  problems.push(...packed.problems);
  const referenced = new Set<string>();
  const dir = mkdtempSync(path.join(options.scratchDir ?? os.tmpdir(), 'athanor-verify-'));
  const scratchFile = path.join(dir, 'scratch.db');
  const scratchUrl = sqliteDatabaseUrl(scratchFile);
  try {
    const loaded = await replaceDatabase(
      { databaseUrl: scratchUrl, busyTimeoutMs: 5000, lockTimeoutMs: 5000 },
      (trx, target) =>
        loadArchive(trx, target, archive, {
          migrations: known,
          migrateForward: false,
          onProgress: (p) => options.onProgress?.({ done: p.rowsDone, total: p.rowsTotal, what: p.table }),
        }),
    );
    for (const problem of checkSqliteFile(scratchFile)) {
      problems.push({ file: 'scratch database', problem });
    }
    const snapshot = await openSnapshot(scratchUrl, { busyTimeoutMs: 5000 });
    try {
      const restored = new Map(snapshot.tables.map((t) => [t.name, t]));
      for (const table of manifest.tables) {
        const live = restored.get(table.name);
        if (!live) {
          problems.push({ file: `table ${table.name}`, problem: 'missing after restore' });
          continue;
        }
        const content = createHash('sha256');
        let count = 0;
        for await (const row of snapshotRows(snapshot, live)) {
          // A result stored inline (migration 9) has its bytes in the row, no blob.
          if (table.name === 'results' && typeof row.blob_sha256 === 'string' && (row.body ?? null) === null)
            referenced.add(row.blob_sha256);
          if (table.name === 'task_attempts' && typeof row.log_sha256 === 'string')
            referenced.add(row.log_sha256);
          const ordered = Object.fromEntries(table.columns.map((c) => [c.name, row[c.name] ?? null]));
          content.update(`${JSON.stringify(ordered)}\n`);
          count += 1;
        }
        if (count !== table.rowCount) {
          problems.push({
            file: `table ${table.name}`,
            problem: `${count} rows after restore, the manifest records ${table.rowCount}`,
          });
        } else if (content.digest('hex') !== table.contentSha256) {
          problems.push({
            file: `table ${table.name}`,
            problem: 'rows read back after restore differ from the backup',
          });
        }
      }
    } finally {
      await snapshot.close();
    }
    if (manifest.blobs || manifest.packs) {
      // Every result's bytes are in the backup, or were already missing from the object store.
      const kept = new Set([
        ...(manifest.blobs ?? []).map((b) => b.sha256),
        ...packed.held,
        ...(manifest.missingBlobs ?? []),
      ]);
      const unkept = [...referenced].filter((sha256) => !kept.has(sha256));
      if (unkept.length > 0) {
        problems.push({
          file: 'table results',
          problem: `${unkept.length} results reference blobs the backup does not hold (first: ${unkept[0]})`,
        });
      }
    }
    return loaded.rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `backup_corrupt` error for a verify that found problems (exit 3), naming the files. */
export function verificationFailedError(record: VerificationRecord): AthanorError {
  return new AthanorError(
    'backup_corrupt',
    `backup ${record.backupId} failed verification: ${record.problems.map((p) => p.file).join(', ')}. ` +
      `Do not rely on it; take a new backup and check the target's storage`,
    { details: { problems: record.problems } },
  );
}
