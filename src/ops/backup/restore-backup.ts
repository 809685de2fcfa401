import type { Kysely } from 'kysely';
import type { Config } from '../../config/resolve-config.js';
import { redactUrl } from '../../domain/database-url.js';
import { AthanorError, errorFacts, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { osActor } from '../../service/audit.js';
import type { BackendName } from '../../store/backend.js';
import { migrations as releaseMigrations } from '../../store/migrations/index.js';
import type { Migration } from '../../store/migrations/migration.js';
import { openStore } from '../../store/open-store.js';
import { insertAuditEntry } from '../../store/queries/audit.js';
import type { Database } from '../../store/schema.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import { getMaintenance, pauseWrites, setMaintenance } from '../maintenance.js';
import { auditBackupEvent } from './backup-audit.js';
import { restoreBlobs } from './backup-blobs.js';
import { readManifest, resolveBackupId } from './backup-target.js';
import { createBackup } from './create-backup.js';
import type { DecryptionKeys, EncryptionSettings } from './encryption.js';
import { checkRestorable, loadArchive } from './load-archive.js';
import { openArchive } from './read-archive.js';
import { replaceDatabase, tablesHoldingData } from './replace-database.js';

export interface RestoreProgress {
  readonly table: string;
  readonly rowsDone: number;
  readonly rowsTotal: number;
}

export interface RestoreBackupOptions {
  readonly target: ObjectStore;
  /** A backup id, or `latest`. */
  readonly backup: string;
  /** The database to replace; with `objectsUrl`, the backup's result blobs go back there. */
  readonly config: Pick<Config, 'databaseUrl' | 'busyTimeoutMs' | 'lockTimeoutMs'> & {
    readonly objectsUrl?: string;
  };
  /** The object store result blobs are restored into; default the one `config.objectsUrl` names. */
  readonly objects?: ObjectStore;
  /** Load the backup at its own schema version and leave it there; default false (migrate forward). */
  readonly noMigrate?: boolean;
  readonly keys: DecryptionKeys;
  /** Replace a database that holds data, after taking a safety backup of it; default false. */
  readonly force?: boolean;
  /** How the safety backup taken by `force` is encrypted (the target's usual encryption). */
  readonly safetyBackupEncryption?: EncryptionSettings;
  readonly actor?: string;
  /** For tests: the migrations of "this release". */
  readonly migrations?: readonly Migration[];
  readonly onProgress?: (progress: RestoreProgress) => void;
}

export interface RestoreResult {
  readonly backupId: string;
  readonly database: string;
  readonly backend: BackendName;
  readonly backupBackend: BackendName;
  readonly rows: number;
  readonly tables: number;
  /** The backup's schema version, at which it was loaded. */
  readonly backupSchemaVersion: number;
  /** The schema version after migrating forward. */
  readonly schemaVersion: number;
  readonly appliedMigrations: readonly number[];
  /** Result blobs copied back into the object store, and those it already held. */
  readonly blobs: { readonly copied: number; readonly present: number };
  readonly safetyBackupId?: string;
  readonly durationMs: number;
}

const restoreReasonPrefix = 'restoring backup ';

async function pauseServers(config: RestoreBackupOptions['config'], actor: string, reason: string) {
  const store = await openStore(config);
  try {
    await pauseWrites(store, actor, reason);
  } finally {
    await store.close();
  }
}

/**
 * Ends the maintenance a restore began. The restored database holds the backup's own maintenance
 * state; it is switched off only when a restore switched it on (a safety backup is taken during
 * one), never when an operator's window was backed up.
 */
async function resumeServers(config: RestoreBackupOptions['config'], actor: string) {
  const store = await openStore(config);
  try {
    const state = await getMaintenance(store);
    if (state.on && state.reason?.startsWith(restoreReasonPrefix)) await setMaintenance(store, actor, false);
  } finally {
    await store.close();
  }
}

async function existingData(config: RestoreBackupOptions['config']): Promise<string[]> {
  let store;
  try {
    store = await openStore(config);
  } catch (error) {
    // No database yet (a missing SQLite file): nothing to protect.
    if (isAthanorError(error) && error.code === 'database_unavailable') return [];
    throw error;
  }
  try {
    return await tablesHoldingData(store);
  } finally {
    await store.close();
  }
}

/**
 * Restores a backup into the configured database, replacing its contents atomically, then
 * migrates it forward to this release (unless `noMigrate`). Its result blobs go back into the
 * object store while the tables load, and the database commits only after them. A database
 * holding data is refused (exit 7) unless
 * `force`, which first takes a safety backup of it to the same target.
 */
export async function restoreBackup(options: RestoreBackupOptions): Promise<RestoreResult> {
  const started = performance.now();
  const actor = options.actor ?? osActor();
  const known = options.migrations ?? releaseMigrations;
  const database = redactUrl(options.config.databaseUrl);
  let backupId = options.backup;
  // A restore that fails before replacing the database ends the maintenance it began.
  let paused = false;
  let replaced = false;
  try {
    backupId = await resolveBackupId(options.target, options.backup);
    const manifest = await readManifest(options.target, backupId);
    await checkRestorable(manifest, known);
    const archive = await openArchive(options.target, manifest, options.keys);

    let safetyBackupId: string | undefined;
    const holding = await existingData(options.config);
    if (holding.length > 0) {
      if (!options.force) {
        throw new AthanorError(
          'target_not_empty',
          `the database ${database} holds data (${holding.join(', ')}); restore refused. Pass --force to ` +
            `take a safety backup of it and then replace it, or restore into an empty database (--database-url)`,
          { details: { tables: holding } },
        );
      }
      if (!options.safetyBackupEncryption) {
        throw new AthanorError('internal', 'a forced restore needs the encryption of its safety backup');
      }
      // Servers on this database stop writing before the safety backup, so nothing they write is
      // lost between it and the restore. A killed restore leaves maintenance on: look, then switch
      // it off (or run the restore again).
      await pauseServers(options.config, actor, `${restoreReasonPrefix}${backupId}`);
      paused = true;
      const safety = await createBackup({
        config: options.config,
        target: options.target,
        encryption: options.safetyBackupEncryption,
        reason: `pre-restore of ${backupId}`,
        actor,
      });
      safetyBackupId = safety.manifest.id;
    }

    // Blobs go back while the tables load, and the database commits only once every blob it
    // references is durable in the object store: after the commit each result can be downloaded.
    const objects =
      options.objects ?? (options.config.objectsUrl ? openObjectStore(options.config.objectsUrl) : undefined);
    const blobsAbort = new AbortController();
    const blobsRestored = objects
      ? restoreBlobs({
          target: options.target,
          manifest,
          objects,
          decrypter: archive.decrypter,
          signal: blobsAbort.signal,
        })
      : Promise.resolve({ copied: 0, present: 0 });
    // Awaited inside the load, or settled below when the load fails first.
    blobsRestored.catch(() => {});

    let loaded;
    try {
      loaded = await replaceDatabase(options.config, async (trx, target) => {
        const result = await loadArchive(trx, target, archive, {
          migrations: known,
          migrateForward: !options.noMigrate,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
        const blobs = await blobsRestored;
        // The restored database's own audit log records where its contents came from, atomically with them.
        if (await target.backend.tableExists(trx, 'audit_log')) {
          await insertAuditEntry(trx as Kysely<Database>, {
            at: new Date().toISOString(),
            actor,
            action: 'backup.restore',
            target: `${options.target.url} ${backupId}`,
            outcome: 'ok',
            details: JSON.stringify({
              backupId,
              rows: result.rows,
              backupSchemaVersion: manifest.schema.version,
              applied: result.applied,
              blobs,
              ...(safetyBackupId ? { safetyBackupId } : {}),
            }),
          });
        }
        return { ...result, blobs, backend: target.backend.name };
      });
    } catch (error) {
      // The load failed: no further blobs are started, and the restore ends once the copies in
      // flight have settled (nothing keeps writing behind the caller's back).
      blobsAbort.abort();
      await blobsRestored.catch(() => {});
      throw error;
    }
    replaced = true;
    await resumeServers(options.config, actor);
    return {
      backupId,
      database,
      backend: loaded.backend,
      backupBackend: manifest.backend,
      rows: loaded.rows,
      tables: loaded.tables,
      backupSchemaVersion: manifest.schema.version,
      schemaVersion: loaded.schemaVersion,
      appliedMigrations: loaded.applied,
      blobs: loaded.blobs,
      ...(safetyBackupId ? { safetyBackupId } : {}),
      durationMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    if (paused && !replaced) await resumeServers(options.config, actor).catch(() => {});
    await auditBackupEvent(options.config, {
      actor,
      action: 'backup.restore',
      target: `${options.target.url} ${backupId}`,
      outcome: 'error',
      details: { backupId, ...errorFacts(error) },
    });
    throw error;
  }
}
