// What the backup commands call, in one module: it pulls in the S3 SDK and age, so the CLI loads
// it only when a backup verb runs and every other command starts fast.
export { openObjectStore } from '../../objects/open-object-store.js';
export { listBackups } from './backup-target.js';
export { BackupTarget, backupTargetOpener } from './target.js';
export { backupDecryptionKeys, backupEncryption } from './encryption.js';
export { pruneBackups } from './prune-backups.js';
export { restoreBackup } from './restore-backup.js';
export { takeBackup } from './take-backup.js';
export { verificationFailedError, verifyBackup } from './verify-backup.js';
