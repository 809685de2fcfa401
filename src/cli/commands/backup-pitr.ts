import { Command } from 'commander';
import { redactUrl } from '../../domain/database-url.js';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError } from '../../domain/errors.js';
import { parseDuration } from '../../domain/parse-duration.js';
import { pitrEngine } from '../../ops/pitr/replication-settings.js';
import { load, resolveTarget } from '../backup-support.js';
import { commandConfig, confirm, integerOption, wantsJson } from '../context.js';
import { bold, note, printJson, printLine } from '../output.js';

const loadPitr = () => import('../../ops/pitr/index.js');

const isPostgres = (config: Config) => pitrEngine(config) === 'pgbackrest';

/** `backup pitr setup|status|check`: continuous protection beside the snapshots. */
export function pitrCommand(): Command {
  const pitr = new Command('pitr').description(
    'point-in-time recovery: SQLite replication (built in) or PostgreSQL WAL archiving (pgBackRest)',
  );

  pitr
    .command('setup')
    .description(
      'PostgreSQL: write the pgBackRest configuration for the cluster and the backup target, turn WAL ' +
        'archiving on, create the stanza and take the first full backup. SQLite: say how replication runs',
    )
    .action(async (_options: unknown, cmd: Command) => {
      const config = commandConfig(cmd);
      const json = wantsJson(cmd);
      if (!isPostgres(config)) {
        const message =
          "SQLite is replicated by 'athanor serve' itself: on wherever backups are scheduled ('athanor up'), " +
          'or with ATHANOR_PITR=1; ATHANOR_PITR=0 switches it off. Nothing to set up.';
        if (json) printJson({ engine: 'sqlite', ok: true, message });
        else printLine(message);
        return;
      }
      const ops = await loadPitr();
      const result = await ops.setupPgbackrest({
        config,
        targetUrl: cmd.optsWithGlobals<{ target?: string }>().target ?? config.backupTarget,
        onStep: json ? undefined : (step) => note(step),
      });
      if (json) printJson(result);
      else printLine(result.message);
      if (!result.ok) throw new AthanorError('backup_stale', result.message);
    });

  const statusAction = (strict: boolean) => async (options: { maxLag: string }, cmd: Command) => {
    const config = commandConfig(cmd);
    const maxLagMs = parseDuration(options.maxLag, '--max-lag');
    const ops = await loadPitr();
    const verdict = isPostgres(config)
      ? await ops.pgbackrestVerdict({ config, maxLagMs, check: strict })
      : await ops.replicationVerdict(await resolveTarget(cmd, config), { maxLagMs });
    if (wantsJson(cmd)) printJson(ops.verdictJson(verdict));
    else for (const line of ops.verdictLines(verdict)) printLine(line);
    if (verdict.problem) throw verdict.problem;
  };
  pitr
    .command('status')
    .description('the restorable range and the lag of continuous protection (exit 3 when failing or behind)')
    .option('--max-lag <duration>', 'how far behind it may be: 10s, 5m', '60s')
    .action(statusAction(false));
  pitr
    .command('check')
    .description(
      'prove continuous protection works now: PostgreSQL switches WAL and waits for it in the repository ' +
        '(pgbackrest check); SQLite checks the replicator reports and is current (exit 3 otherwise)',
    )
    .option('--max-lag <duration>', 'how far behind it may be', '10s')
    .action(statusAction(true));
  return pitr;
}

export interface PointInTimeOptions {
  readonly toTime?: string;
  readonly pgData?: string;
  readonly pgPort?: number;
  readonly force?: boolean;
  readonly yes?: boolean;
}

/** The `backup restore` argument and options of point-in-time recovery. */
export function withPointInTime(restore: Command): Command {
  return restore
    .argument('[backup]', "a backup id, or 'latest' (none with --to-time)")
    .option(
      '--to-time <time>',
      'restore the database as it was at this ISO 8601 time (point-in-time recovery)',
    )
    .option(
      '--pg-data <dir>',
      'with --to-time on PostgreSQL: the new data directory the cluster is restored into',
    )
    .option(
      '--pg-port <port>',
      'with --pg-data: the port the restored cluster listens on',
      integerOption('--pg-port', { min: 1 }),
    );
}

/** Runs a `--to-time` restore and returns true, or checks a backup id was given and returns false. */
export async function restoreByTime(
  backup: string | undefined,
  options: PointInTimeOptions,
  cmd: Command,
): Promise<boolean> {
  if (options.toTime !== undefined) {
    if (backup !== undefined)
      throw new AthanorError(
        'invalid_argument',
        `--to-time and a backup id ('${backup}') cannot be used together: pass one`,
      );
    await restoreToTime(cmd, { ...options, toTime: options.toTime });
    return true;
  }
  if (backup === undefined)
    throw new AthanorError(
      'invalid_argument',
      "restore needs a backup id, 'latest', or --to-time <ISO 8601 time>",
    );
  return false;
}

/** `backup restore --to-time`: the database as it was at a point, from the continuous replica or archive. */
export async function restoreToTime(
  cmd: Command,
  options: { toTime: string; force?: boolean; yes?: boolean; pgData?: string; pgPort?: number },
): Promise<void> {
  const config = commandConfig(cmd);
  const pitrOps = await loadPitr();
  const toTime = pitrOps.parsePointInTime(options.toTime);
  const backupOps = await load();
  const keys = backupOps.backupDecryptionKeys(config);
  if (options.pgData !== undefined || isPostgres(config)) {
    if (options.pgData === undefined) {
      throw new AthanorError(
        'invalid_argument',
        '--to-time on PostgreSQL restores into a new data directory: pass --pg-data <dir> (and --pg-port)',
      );
    }
    const result = await pitrOps.restorePgbackrestToTime({
      config,
      toTime,
      dataDir: options.pgData,
      ...(options.pgPort !== undefined ? { port: options.pgPort } : {}),
    });
    if (wantsJson(cmd)) printJson(result);
    else {
      printLine(
        `restored the cluster to ${toTime.toISOString()} into ${result.dataDir}, listening on port ${result.port}: ` +
          `${result.rows} rows, migration ${result.schemaVersion}`,
      );
      note(`point ATHANOR_DATABASE_URL at ${result.databaseUrl} once you have checked it`);
      if (result.blobs.missing.length > 0)
        note(
          `${result.blobs.missing.length} result blobs it references are missing: ${result.blobs.missing.slice(0, 5).join(', ')}`,
        );
    }
    if (result.blobs.missing.length > 0) {
      throw new AthanorError(
        'backup_corrupt',
        `${result.blobs.missing.length} result blobs the restored cluster references are in neither the object store nor the target`,
      );
    }
    return;
  }
  const target = await resolveTarget(cmd, config);
  if (options.force) {
    await confirm(
      `restore ${redactUrl(config.databaseUrl)} to ${toTime.toISOString()}: its current contents are replaced (a safety backup is taken first)`,
      options.yes,
    );
  }
  const result = await pitrOps.restoreReplicaToTime({
    target,
    toTime,
    config,
    keys,
    ...(options.force ? { force: true, safetyBackupEncryption: backupOps.backupEncryption(config) } : {}),
  });
  if (wantsJson(cmd)) printJson(result);
  else {
    if (result.safetyBackupId) note(`safety backup of the replaced database: ${result.safetyBackupId}`);
    printLine(
      `restored ${result.database} to ${result.restoredTo} (asked for ${toTime.toISOString()}; replica generation ` +
        `${result.generation}, ${result.transactions} transactions replayed): ${result.rows} rows, migration ${result.schemaVersion}`,
    );
    printLine(
      `${bold('blobs')} ${result.blobs.present} present, ${result.blobs.copied} copied from the target, ${result.blobs.missing.length} missing`,
    );
    if (result.blobs.missingLogs.length > 0)
      note(
        `${result.blobs.missingLogs.length} attempt logs are not at the target (a replica carries result blobs, not logs)`,
      );
    if (result.blobs.missing.length > 0)
      note(
        `missing result blobs (their results cannot be downloaded): ${result.blobs.missing.slice(0, 5).join(', ')}`,
      );
    note('restart servers that use this database: they still hold the file it replaced');
  }
  if (result.blobs.missing.length > 0) {
    throw new AthanorError(
      'backup_corrupt',
      `${result.blobs.missing.length} result blobs the restored database references are in neither the object store nor the target`,
    );
  }
}
