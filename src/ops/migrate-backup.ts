import type { Config } from '../config/resolve-config.js';
import { AthanorError, isAthanorError } from '../domain/errors.js';
import { getMigrationStatus } from '../store/migrator.js';
import type { Store } from '../store/open-store.js';
import { backupEnv, chooseBackupTarget } from './backup/backup-env.js';
import { getMaintenance, pauseWrites } from './maintenance.js';

/** The maintenance reason `database migrate` sets; other migrators wait while it is on. */
const migrationReason = 'database migration in progress';

/** Holds servers in maintenance while migrations run (see pauseWrites). */
export function pauseForMigration(store: Store, actor: string) {
  return pauseWrites(store, actor, migrationReason);
}

/**
 * The backup `database migrate` takes first and records with the migrations it applies, waiting
 * while the backup target is busy or another migrator is migrating: several `database migrate`
 * processes started together each find migrations pending, and the target takes one backup at a
 * time. After each wait the status is read again; once another migrator has applied everything,
 * there is nothing to back up and undefined is returned. `onWait` is called once, on the first wait.
 */
export async function preMigrationBackup(
  store: Store,
  config: Config,
  options: { readonly to?: number | undefined; readonly backupTarget?: string | undefined },
  onWait: () => void,
): Promise<string | undefined> {
  const deadline = Date.now() + config.lockTimeoutMs;
  let waited = false;
  for (;;) {
    const status = await getMigrationStatus(store);
    const steps = status.pending.filter((m) => options.to === undefined || m.id <= options.to);
    if (steps.length === 0) return undefined;
    // Another migrator is migrating right now: a backup taken now would be of a database in
    // maintenance, half-way through; wait for it to finish instead.
    const maintenance = await getMaintenance(store);
    const migrating = maintenance.on && maintenance.reason === migrationReason;
    try {
      if (migrating) {
        throw new AthanorError(
          'lock_timeout',
          "another 'athanor database migrate' is migrating this database; run this again once it has finished",
        );
      }
      return await backupBeforeMigrate(
        config,
        options.backupTarget,
        status.databaseVersion,
        steps.at(-1)?.id ?? status.databaseVersion,
      );
    } catch (error) {
      if (!isAthanorError(error) || error.code !== 'lock_timeout' || Date.now() > deadline) throw error;
      if (!waited) onWait();
      waited = true;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/**
 * Takes the backup that `database migrate` records with the migrations it applies. The backup
 * code (S3 SDK, age) loads only here, so other database verbs start fast.
 */
async function backupBeforeMigrate(
  config: Config,
  targetFlag: string | undefined,
  from: number,
  to: number,
): Promise<string> {
  const choice = chooseBackupTarget(config, targetFlag, '--backup-target');
  const url = choice.url;
  try {
    const [{ BackupTarget }, { createBackup }, { backupEncryption }] = await Promise.all([
      import('./backup/target.js'),
      import('./backup/create-backup.js'),
      import('./backup/encryption.js'),
    ]);
    const { manifest } = await createBackup({
      config,
      target: BackupTarget.open(choice, { forWriting: true }),
      encryption: backupEncryption(config),
      reason: `pre-migrate ${from} to ${to}`,
    });
    return manifest.id;
  } catch (error) {
    throw new AthanorError(
      isAthanorError(error) ? error.code : 'internal',
      `no migration applied: the backup taken before migrating failed: ${(error as Error).message}. ` +
        `Fix the backup target (${url}; --backup-target or ${backupEnv.target}), or pass --no-backup to ` +
        'migrate without one',
      { cause: error },
    );
  }
}
