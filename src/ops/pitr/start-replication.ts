import type { Config } from '../../config/resolve-config.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import { chooseBackupTarget } from '../backup/backup-env.js';
import { backupEncryption } from '../backup/encryption.js';
import { BackupTarget } from '../backup/target.js';
import type { SqliteReplicatorOptions } from './sqlite-replicator.js';
import { SqliteReplicator } from './sqlite-replicator.js';

/** Starts replicating `databaseFile` to the configured backup target, encrypted as backups are. */
export async function startReplication(options: {
  readonly config: Config;
  readonly databaseFile: string;
  readonly log?: SqliteReplicatorOptions['log'];
}): Promise<SqliteReplicator> {
  const { config } = options;
  const target = BackupTarget.open(chooseBackupTarget(config), { forWriting: true });
  const objects = openObjectStore(config.objectsUrl);
  const replicator = new SqliteReplicator({
    databaseFile: options.databaseFile,
    target,
    encryption: backupEncryption(config),
    // Blobs of a local object store would be lost with the disk: they go beside the replica.
    ...(objects.url.startsWith('file:') ? { objects } : {}),
    windowMs: config.pitrWindowHours * 60 * 60 * 1000,
    ...(options.log ? { log: options.log } : {}),
  });
  await replicator.start();
  return replicator;
}
