import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/resolve-config.js';
import type { BackupTarget } from '../ops/backup/target.js';
import type { ScheduleSettings } from '../ops/schedule/schedule-settings.js';
import type { Store } from '../store/open-store.js';

export interface BackupSchedulerPluginOptions {
  readonly store: Store;
  readonly config: Config;
  readonly settings: ScheduleSettings;
  /** Opens `settings.target` once for the whole server (`backupTargetOpener`). */
  readonly openTarget: () => BackupTarget;
}

/**
 * Runs scheduled backups, pruning and restore drills inside the server (one replica per slot);
 * stops in `onClose`, after the run in progress. Nothing is started when both schedules are off.
 */
export async function backupSchedulerPlugin(
  app: FastifyInstance,
  options: BackupSchedulerPluginOptions,
): Promise<void> {
  const { store, config, settings } = options;
  if (!settings.schedule && !settings.drillSchedule) return;
  // Loaded on demand: the backup code pulls in the S3 SDK and age.
  const { startBackupScheduler } = await import('../ops/schedule/backup-scheduler.js');
  const scheduler = startBackupScheduler({
    store,
    config,
    ...settings,
    target: options.openTarget(),
    // pino writes its own numeric level: a second 'level' key would repeat it as text.
    log: (message, { level, ...fields }) => app.log[level](fields, message),
  });
  app.addHook('onClose', async () => scheduler.stop());
}
