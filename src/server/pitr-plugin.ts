import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/resolve-config.js';
import type { ScheduleSettings } from '../ops/schedule/schedule-settings.js';
import { replicatedDatabaseFile } from '../ops/pitr/replication-settings.js';

export interface PitrPluginOptions {
  readonly config: Config;
  readonly settings: ScheduleSettings;
}

/**
 * Replicates a SQLite database continuously to the backup target (point-in-time recovery), on by
 * default wherever backups are scheduled; stops in `onClose`, after shipping what is committed.
 */
export async function pitrPlugin(app: FastifyInstance, options: PitrPluginOptions): Promise<void> {
  const databaseFile = replicatedDatabaseFile(options.config, options.settings);
  if (!databaseFile) return;
  const { startReplication } = await import('../ops/pitr/start-replication.js');
  const replicator = await startReplication({
    config: options.config,
    databaseFile,
    log: (level, message, fields) => app.log[level](fields ?? {}, message),
  });
  app.addHook('onClose', async () => replicator.stop());
}
