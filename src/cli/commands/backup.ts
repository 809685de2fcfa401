import { Command, Option } from 'commander';
import type { SettingName } from '../../config/resolve-config.js';
import { defaultText, settingSpecs } from '../../config/resolve-config.js';
import { redactUrl } from '../../domain/database-url.js';
import { AthanorError } from '../../domain/errors.js';
import { backupEnv } from '../../ops/backup/backup-env.js';
import type { VerificationRecord } from '../../ops/backup/backup-target.js';
import type { BackupProgress } from '../../ops/backup/create-backup.js';
import {
  backupListColumns,
  entryJson,
  formatBytes,
  load,
  manifestSummary,
  resolveTarget,
  writableTarget,
} from '../backup-support.js';
import { addRetentionVerbs } from './backup-retention.js';
import type { PointInTimeOptions } from './backup-pitr.js';
import { pitrCommand, restoreByTime, withPointInTime } from './backup-pitr.js';
import { commandConfig, confirm, integerOption, wantsJson } from '../context.js';
import { note, printJson, printLine, printTable } from '../output.js';
import { progressBar } from '../progress-bar.js';

/** The settings `backup --help` lists, each described once in its spec. */
const backupSettings = [
  'backupTarget',
  'backupAgeRecipients',
  'backupPassphrase',
  'backupAgeIdentityFile',
  'backupSchedule',
  'backupDrillSchedule',
  'backupKeep',
] as const satisfies readonly SettingName[];

export function backupCommand(): Command {
  const command = new Command('backup')
    .description('online backups of the state store: create, list, verify, restore, prune')
    .addOption(
      new Option(
        '--target <url>',
        `backup target: file:<dir> or s3://bucket/prefix (${backupEnv.target}; default file:<data dir>/backups)`,
      ),
    )
    .addHelpText(
      'after',
      [
        '',
        'Environment:',
        ...backupSettings.map(
          (name) =>
            `  ${settingSpecs[name].env.padEnd(34)} ${settingSpecs[name].description} (default ${defaultText(name)})`,
        ),
        `  ${'ATHANOR_BACKUP_KEEP_<RULE>'.padEnd(34)} one rule: _LAST, _HOURLY, _DAILY, _WEEKLY, _MONTHLY, _YEARLY`,
      ].join('\n'),
    );

  command
    .command('create')
    .description('take an online backup of the database (one consistent snapshot; writes continue)')
    .option(
      '--chunk-size <bytes>',
      'uncompressed bytes per table chunk file (default 64 MiB)',
      integerOption('--chunk-size', { min: 1 }),
    )
    .option('--verify', 'verify the new backup by restoring it into a scratch database')
    .option(
      '--output <file>',
      'write the backup as one tar file instead of to a target (extract it, then use --target file:<dir>)',
    )
    .action(async (options: { chunkSize?: number; verify?: boolean; output?: string }, cmd: Command) => {
      const json = wantsJson(cmd);
      const config = commandConfig(cmd);
      if (options.output !== undefined && cmd.optsWithGlobals<{ target?: string }>().target !== undefined) {
        throw new AthanorError(
          'invalid_argument',
          '--output and --target cannot be used together: --output writes the backup to one tar file, ' +
            '--target to a backup target. Pass one of them',
        );
      }
      const ops = await load();
      const bar = progressBar('backup');
      let result;
      try {
        result = await ops.takeBackup({
          config,
          destination:
            options.output !== undefined
              ? { output: options.output }
              : { target: await writableTarget(cmd, config) },
          chunkBytes: options.chunkSize,
          verify: options.verify,
          onProgress: (p: BackupProgress) =>
            bar.update(p.tableIndex + (p.tableDone ? 1 : 0), p.tableCount, `${p.table} ${p.rows} rows`),
          onVerifyStart: () => bar.stop(),
        });
      } finally {
        bar.stop();
      }
      const { manifest: m, output, verification } = result;
      if (json)
        printJson({
          ...manifestSummary(m, result.targetUrl ?? ''),
          ...(output ? { target: null, output: output.path, outputSizeBytes: output.sizeBytes } : {}),
          verification: verification ?? null,
        });
      else {
        const encrypted = m.encryption.mode === 'none' ? '' : ` (encrypted, ${m.encryption.mode})`;
        printLine(
          output
            ? `backup ${m.id} written to ${output.path} (${formatBytes(output.sizeBytes)}): ` +
                `${m.tables.length} tables, ${m.totals.rows} rows in ${m.timings.durationMs} ms${encrypted}`
            : `backup ${m.id} written to ${result.targetUrl}: ${m.tables.length} tables, ${m.totals.rows} rows, ` +
                `${formatBytes(m.totals.sizeBytes)} in ${m.timings.durationMs} ms${encrypted}`,
        );
        if (verification) printLine(`verified: ${verification.ok ? 'ok' : 'FAILED'}`);
        if (output)
          printLine(
            'to use it, extract it into an empty directory, which is then a backup target:\n' +
              `  mkdir <dir> && tar -xf ${output.path} -C <dir>\n` +
              '  athanor backup verify latest --target file:<dir>\n' +
              '  athanor backup restore latest --target file:<dir>',
          );
      }
      if (verification && !verification.ok) throw ops.verificationFailedError(verification);
    });

  command
    .command('list')
    .description('the complete backups at the target, oldest first')
    .action(async (_options: unknown, cmd: Command) => {
      const config = commandConfig(cmd);
      const ops = await load();
      const entries = await ops.listBackups(await resolveTarget(cmd, config));
      if (wantsJson(cmd)) {
        printJson(entries.map(entryJson));
        return;
      }
      printTable(entries, backupListColumns, 'no backups at this target');
    });

  command
    .command('verify')
    .description(
      'prove a backup restorable: restore it into a scratch database and check every row (exit 3 on failure)',
    )
    .argument('[backup]', "a backup id, or 'latest'", 'latest')
    .option('--quick', 'only re-read every file and check it against the manifest')
    .action(async (backup: string, options: { quick?: boolean }, cmd: Command) => {
      const config = commandConfig(cmd);
      const ops = await load();
      const bar = progressBar('verify');
      let record: VerificationRecord;
      try {
        record = await ops.verifyBackup({
          target: await resolveTarget(cmd, config),
          backup,
          mode: options.quick ? 'quick' : 'full',
          keys: options.quick ? { identities: [], passphrases: [] } : ops.backupDecryptionKeys(config),
          auditConfig: config,
          onProgress: (p) => bar.update(p.done, p.total, p.what),
        });
      } finally {
        bar.stop();
      }
      if (wantsJson(cmd)) printJson(record);
      else if (record.ok) {
        printLine(
          `backup ${record.backupId} verified (${record.mode})` +
            (record.rows !== undefined ? `: ${record.rows} rows restored and checked` : ''),
        );
      } else {
        printTable(record.problems, [
          { header: 'FILE', value: (p) => p.file },
          { header: 'PROBLEM', value: (p) => p.problem },
        ]);
      }
      if (!record.ok) throw ops.verificationFailedError(record);
    });

  withPointInTime(command.command('restore'))
    .description(
      'replace the database with a backup (atomically), then migrate it to this release; result blobs go ' +
        'back into the object store. Servers on the database are held in maintenance mode meanwhile',
    )
    .option('--force', 'replace a database that holds data, after taking a safety backup of it')
    .option(
      '--no-migrate',
      "leave the database at the backup's migration (to go back to the release that wrote it)",
    )
    .option('-y, --yes', 'do not ask for confirmation (with --force)')
    .action(
      async (
        backup: string | undefined,
        options: PointInTimeOptions & { force?: boolean; yes?: boolean; migrate: boolean },
        cmd: Command,
      ) => {
        if ((await restoreByTime(backup, options, cmd)) || backup === undefined) return;
        const config = commandConfig(cmd);
        const ops = await load();
        const target = await resolveTarget(cmd, config);
        const keys = ops.backupDecryptionKeys(config);
        if (options.force) {
          await confirm(
            `restore ${backup} over ${redactUrl(config.databaseUrl)}: its current contents are replaced (a safety backup is taken first)`,
            options.yes,
          );
        }
        const bar = progressBar('restore');
        let result;
        try {
          result = await ops.restoreBackup({
            target,
            backup,
            config,
            keys,
            noMigrate: !options.migrate,
            ...(options.force ? { force: true, safetyBackupEncryption: ops.backupEncryption(config) } : {}),
            onProgress: (p) => bar.update(p.rowsDone, p.rowsTotal, p.table),
          });
        } finally {
          bar.stop();
        }
        if (wantsJson(cmd)) printJson(result);
        else {
          if (result.safetyBackupId) note(`safety backup of the replaced database: ${result.safetyBackupId}`);
          printLine(
            `restored backup ${result.backupId} (${result.backupBackend}, migration ${result.backupSchemaVersion}) into ` +
              `${result.database}: ${result.tables} tables, ${result.rows} rows; now at migration ${result.schemaVersion}`,
          );
          if (result.blobs.copied > 0)
            note(`${result.blobs.copied} result blobs copied back into the object store`);
          if (result.backend === 'sqlite')
            note('restart servers that use this SQLite file: they still hold the file it replaced');
        }
      },
    );

  addRetentionVerbs(command);
  command.addCommand(pitrCommand());
  return command;
}
