import path from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import type { Config } from '../../config/resolve-config.js';
import { redactUrl } from '../../config/resolve-config.js';
import { AthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { backupEnv } from '../../ops/backup/backup-env.js';
import type { BackupEntry, VerificationRecord } from '../../ops/backup/backup-target.js';
import type { BackupProgress } from '../../ops/backup/create-backup.js';
import type { BackupTarResult } from '../../ops/backup/export-tar.js';
import type { BackupManifest } from '../../ops/backup/manifest.js';
import type { RetentionPolicy } from '../../ops/backup/retention.js';
import type { BackupAge } from '../../ops/schedule/backup-freshness.js';
import { backupFreshness } from '../../ops/schedule/backup-freshness.js';
import type { SchedulerLogFields } from '../../ops/schedule/backup-scheduler.js';
import { formatDuration, parseDuration } from '../../ops/schedule/parse-duration.js';
import { resolveScheduleSettings, scheduleEnv } from '../../ops/schedule/schedule-settings.js';
import { openStore } from '../../store/open-store.js';
import { commandConfig, confirm, integerOption, wantsJson } from '../context.js';
import { bold, note, printJson, printLine, printTable } from '../output.js';

// The backup code pulls in the S3 SDK and age; loading it only when a backup verb runs keeps every
// other command's start-up fast.
async function load() {
  const [objects, target, create, encryption, prune, restore, verify, retention] = await Promise.all([
    import('../../objects/open-object-store.js'),
    import('../../ops/backup/backup-target.js'),
    import('../../ops/backup/create-backup.js'),
    import('../../ops/backup/encryption.js'),
    import('../../ops/backup/prune-backups.js'),
    import('../../ops/backup/restore-backup.js'),
    import('../../ops/backup/verify-backup.js'),
    import('../../ops/backup/retention.js'),
  ]);
  return { ...objects, ...target, ...create, ...encryption, ...prune, ...restore, ...verify, ...retention };
}

/** `--target`, else ATHANOR_BACKUP_TARGET, else `file:<data dir>/backups`. */
async function resolveTarget(command: Command, config: Config): Promise<ObjectStore> {
  const flag = command.optsWithGlobals<{ target?: string }>().target;
  const fromEnv = process.env[backupEnv.target];
  const url = flag ?? (fromEnv ? fromEnv : `file:${path.join(config.dataDir, 'backups')}`);
  return (await load()).openObjectStore(url);
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A progress bar on stderr when it is a terminal; otherwise nothing. */
function progressBar(label: string): {
  update(done: number, total: number, what: string): void;
  stop(): void;
} {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% {value}/{total} {what}`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, what) {
      if (!started) {
        bar.start(total, done, { what });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { what });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function manifestSummary(manifest: BackupManifest, targetUrl: string) {
  return {
    id: manifest.id,
    target: targetUrl,
    reason: manifest.reason,
    backend: manifest.backend,
    appVersion: manifest.appVersion,
    schemaVersion: manifest.schema.version,
    snapshotAt: manifest.snapshot.takenAt,
    tables: manifest.tables.map((t) => ({ name: t.name, rows: t.rowCount, chunks: t.chunks.length })),
    rows: manifest.totals.rows,
    files: manifest.totals.files,
    sizeBytes: manifest.totals.sizeBytes,
    compression: manifest.compression,
    encryption: manifest.encryption,
    durationMs: manifest.timings.durationMs,
  };
}

function verificationText(record: VerificationRecord | undefined): string {
  if (!record) return '-';
  return `${record.ok ? 'ok' : 'FAILED'} ${record.verifiedAt.slice(0, 16)}Z`;
}

function entryJson(entry: BackupEntry) {
  return {
    id: entry.id,
    createdAt: entry.createdAt.toISOString(),
    ...(entry.manifest
      ? {
          state: 'complete',
          reason: entry.manifest.reason,
          backend: entry.manifest.backend,
          appVersion: entry.manifest.appVersion,
          schemaVersion: entry.manifest.schema.version,
          rows: entry.manifest.totals.rows,
          sizeBytes: entry.manifest.totals.sizeBytes,
          encrypted: entry.manifest.encryption.mode !== 'none',
        }
      : { state: 'corrupt', problem: entry.problem }),
    verification: entry.verification ?? null,
    quickVerification: entry.quickVerification ?? null,
  };
}

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
        `  ${backupEnv.target.padEnd(34)} default backup target`,
        `  ${backupEnv.recipients.padEnd(34)} encrypt new backups to these age1… recipients (comma separated)`,
        `  ${backupEnv.passphrase.padEnd(34)} or encrypt with this passphrase`,
        `  ${backupEnv.passphraseFile.padEnd(34)} or with the passphrase in this file`,
        `  ${backupEnv.identityFile.padEnd(34)} age identities (AGE-SECRET-KEY-1…) that open backups`,
        `  ${scheduleEnv.schedule.padEnd(34)} cron schedule of backups, UTC ('0 * * * *'), or off`,
        `  ${scheduleEnv.drillSchedule.padEnd(34)} cron schedule of restore drills ('30 3 * * *'), or off`,
        `  ${scheduleEnv.keep.padEnd(34)} retention after scheduled backups: hourly=24,daily=7, or off`,
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
      const encryption = ops.encryptionFromEnv();
      const bar = progressBar('backup');
      const onProgress = (p: BackupProgress) =>
        bar.update(p.tableIndex + (p.tableDone ? 1 : 0), p.tableCount, `${p.table} ${p.rows} rows`);
      const verify = (target: ObjectStore, manifest: BackupManifest) =>
        ops.verifyBackup({
          target,
          backup: manifest.id,
          mode: 'full',
          keys: ops.decryptionKeysFromEnv(),
          auditConfig: config,
          // A tar's temporary target is gone afterwards: the audit log names the file instead.
          ...(options.output !== undefined ? { auditTarget: path.resolve(options.output) } : {}),
        });
      let verification: VerificationRecord | undefined;

      if (options.output !== undefined) {
        const { createBackupTar } = await import('../../ops/backup/export-tar.js');
        let result: BackupTarResult;
        try {
          result = await createBackupTar({
            config,
            output: options.output,
            encryption,
            ...(options.chunkSize ? { chunkBytes: options.chunkSize } : {}),
            onProgress,
            // Verified before packing, so that its verify.json travels in the tar.
            ...(options.verify
              ? {
                  beforePack: async (target: ObjectStore, manifest: BackupManifest) => {
                    bar.stop();
                    verification = await verify(target, manifest);
                  },
                }
              : {}),
          });
        } finally {
          bar.stop();
        }
        const m = result.manifest;
        if (json)
          printJson({
            ...manifestSummary(m, ''),
            target: null,
            output: result.outputPath,
            outputSizeBytes: result.outputSizeBytes,
            verification: verification ?? null,
          });
        else {
          printLine(
            `backup ${m.id} written to ${result.outputPath} (${formatBytes(result.outputSizeBytes)}): ` +
              `${m.tables.length} tables, ${m.totals.rows} rows in ${m.timings.durationMs} ms` +
              (m.encryption.mode === 'none' ? '' : ` (encrypted, ${m.encryption.mode})`),
          );
          if (verification) printLine(`verified: ${verification.ok ? 'ok' : 'FAILED'}`);
          printLine(
            'to use it, extract it into an empty directory, which is then a backup target:\n' +
              `  mkdir <dir> && tar -xf ${result.outputPath} -C <dir>\n` +
              '  athanor backup verify latest --target file:<dir>\n' +
              '  athanor backup restore latest --target file:<dir>',
          );
        }
      } else {
        const target = await resolveTarget(cmd, config);
        let result;
        try {
          result = await ops.createBackup({
            config,
            target,
            encryption,
            ...(options.chunkSize ? { chunkBytes: options.chunkSize } : {}),
            onProgress,
          });
        } finally {
          bar.stop();
        }
        if (options.verify) verification = await verify(target, result.manifest);
        if (json)
          printJson({
            ...manifestSummary(result.manifest, result.targetUrl),
            verification: verification ?? null,
          });
        else {
          const m = result.manifest;
          printLine(
            `backup ${m.id} written to ${result.targetUrl}: ${m.tables.length} tables, ${m.totals.rows} rows, ` +
              `${formatBytes(m.totals.sizeBytes)} in ${m.timings.durationMs} ms` +
              (m.encryption.mode === 'none' ? '' : ` (encrypted, ${m.encryption.mode})`),
          );
          if (verification) printLine(`verified: ${verification.ok ? 'ok' : 'FAILED'}`);
        }
      }
      if (verification && !verification.ok) throw verificationFailed(verification);
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
      printTable(
        entries,
        [
          { header: 'ID', value: (e) => e.id },
          { header: 'BACKEND', value: (e) => e.manifest?.backend ?? 'CORRUPT' },
          { header: 'SCHEMA', value: (e) => (e.manifest ? String(e.manifest.schema.version) : '-') },
          { header: 'ROWS', value: (e) => (e.manifest ? String(e.manifest.totals.rows) : '-') },
          { header: 'SIZE', value: (e) => (e.manifest ? formatBytes(e.manifest.totals.sizeBytes) : '-') },
          {
            header: 'ENCRYPTED',
            value: (e) => (e.manifest ? (e.manifest.encryption.mode === 'none' ? 'no' : 'yes') : '-'),
          },
          { header: 'VERIFIED', value: (e) => verificationText(e.verification) },
          { header: 'REASON', value: (e) => e.manifest?.reason ?? e.problem ?? '' },
        ],
        'no backups at this target',
      );
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
          keys: options.quick ? { identities: [], passphrases: [] } : ops.decryptionKeysFromEnv(),
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
      if (!record.ok) throw verificationFailed(record);
    });

  command
    .command('restore')
    .description(
      'replace the database with a backup (atomically), then migrate it to this release; result blobs go ' +
        'back into the object store. Servers on the database are held in maintenance mode meanwhile',
    )
    .argument('<backup>', "a backup id, or 'latest'")
    .option('--force', 'replace a database that holds data, after taking a safety backup of it')
    .option(
      '--no-migrate',
      "leave the database at the backup's migration (to go back to the release that wrote it)",
    )
    .option('-y, --yes', 'do not ask for confirmation (with --force)')
    .action(
      async (backup: string, options: { force?: boolean; yes?: boolean; migrate: boolean }, cmd: Command) => {
        const config = commandConfig(cmd);
        const ops = await load();
        const target = await resolveTarget(cmd, config);
        const keys = ops.decryptionKeysFromEnv();
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
            ...(options.force ? { force: true, safetyBackupEncryption: ops.encryptionFromEnv() } : {}),
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

  command
    .command('prune')
    .description(
      'delete backups a retention policy does not keep (never the newest verified one, nor one in progress)',
    )
    .option('--keep-last <n>', 'keep the n newest backups', integerOption('--keep-last'))
    .option(
      '--keep-hourly <n>',
      'keep the newest backup of each of the last n hours that have one',
      integerOption('--keep-hourly'),
    )
    .option('--keep-daily <n>', 'same, per day (UTC)', integerOption('--keep-daily'))
    .option('--keep-weekly <n>', 'same, per ISO week', integerOption('--keep-weekly'))
    .option('--keep-monthly <n>', 'same, per month', integerOption('--keep-monthly'))
    .option('--keep-yearly <n>', 'same, per year', integerOption('--keep-yearly'))
    .option('--dry-run', 'print what would be deleted and delete nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (options: RetentionPolicy & { dryRun?: boolean; yes?: boolean }, cmd: Command) => {
      const config = commandConfig(cmd);
      const ops = await load();
      const target = await resolveTarget(cmd, config);
      const policy: RetentionPolicy = {
        keepLast: options.keepLast,
        keepHourly: options.keepHourly,
        keepDaily: options.keepDaily,
        keepWeekly: options.keepWeekly,
        keepMonthly: options.keepMonthly,
        keepYearly: options.keepYearly,
      };
      if (!options.dryRun)
        await confirm(`prune the backups at ${target.url} that the policy does not keep`, options.yes);
      const result = await ops.pruneBackups({
        target,
        policy,
        dryRun: options.dryRun === true,
        auditConfig: config,
      });
      if (wantsJson(cmd)) {
        printJson(result);
        return;
      }
      const rows = [
        ...result.keep.map((k) => ({ id: k.id, action: 'keep', why: k.reasons.join(', ') })),
        ...result.remove.map((id) => ({ id, action: result.dryRun ? 'would remove' : 'removed', why: '' })),
        ...result.incomplete.map((id) => ({
          id,
          action: result.dryRun ? 'would remove' : 'removed',
          why: 'incomplete',
        })),
      ].sort((a, b) => b.id.localeCompare(a.id));
      printTable(
        rows,
        [
          { header: 'ID', value: (r) => r.id },
          { header: 'ACTION', value: (r) => r.action },
          { header: 'WHY', value: (r) => r.why },
        ],
        'no backups at this target',
      );
      if (result.blobs.length > 0)
        note(
          `${result.dryRun ? 'would remove' : 'removed'} ${result.blobs.length} result blobs no kept backup references`,
        );
      if (result.blobsKeptBecause) note(`result blobs left alone: ${result.blobsKeptBecause}`);
    });

  command
    .command('schedule')
    .description(
      'run scheduled backups (each followed by a prune) and restore drills until SIGTERM; a sidecar to ' +
        "'athanor serve'. Replicas sharing a target run each slot once",
    )
    .option(
      '--schedule <cron>',
      `backup schedule in UTC, or off (${scheduleEnv.schedule}; default '0 * * * *', hourly)`,
    )
    .option(
      '--drill-schedule <cron>',
      `restore drill schedule in UTC, or off (${scheduleEnv.drillSchedule}; default '30 3 * * *')`,
    )
    .option(
      '--keep <rules>',
      `retention after each backup, or off (${scheduleEnv.keep}; default hourly=24,daily=7)`,
    )
    .action(async (options: { schedule?: string; drillSchedule?: string; keep?: string }, cmd: Command) => {
      const json = wantsJson(cmd);
      const config = commandConfig(cmd);
      const settings = resolveScheduleSettings({
        profile: 'sidecar',
        dataDir: config.dataDir,
        overrides: {
          schedule: options.schedule,
          drillSchedule: options.drillSchedule,
          keep: options.keep,
          targetUrl: cmd.optsWithGlobals<{ target?: string }>().target,
        },
      });
      if (!settings.schedule && !settings.drillSchedule) {
        throw new AthanorError(
          'invalid_argument',
          `nothing to schedule: backups and drills are both off. Set --schedule or ${scheduleEnv.schedule}`,
        );
      }
      const { startBackupScheduler } = await import('../../ops/schedule/backup-scheduler.js');
      const store = await openStore(config);
      try {
        const stopped = untilSignal();
        const scheduler = startBackupScheduler({
          store,
          config,
          ...settings,
          log: json ? jsonLog : textLog,
        });
        const signal = await stopped;
        note(`received ${signal}: stopping after the run in progress, if any`);
        await scheduler.stop();
      } finally {
        await store.close();
      }
    });

  command
    .command('status')
    .description(
      'exit 0 when the newest complete backup is younger than --max-age, 3 when it is older or there is ' +
        'none (for cron and monitors)',
    )
    .option('--max-age <duration>', 'how old it may be: 90m, 26h, 7d', '26h')
    .option('--verified', 'count only backups whose last full verify (restore drill) passed')
    .action(async (options: { maxAge: string; verified?: boolean }, cmd: Command) => {
      const maxAgeMs = parseDuration(options.maxAge, '--max-age');
      const config = commandConfig(cmd);
      const ops = await load();
      const target = await resolveTarget(cmd, config);
      const entries = await ops.listBackups(target);
      const freshness = backupFreshness(entries, new Date());
      const subject = options.verified ? freshness.newestVerified : freshness.newest;
      const ok = subject !== undefined && subject.ageMs <= maxAgeMs;
      const ageJson = (age: BackupAge | undefined) =>
        age
          ? { id: age.id, createdAt: age.createdAt.toISOString(), ageSeconds: Math.floor(age.ageMs / 1000) }
          : null;
      if (wantsJson(cmd)) {
        printJson({
          ok,
          target: target.url,
          verified: options.verified === true,
          maxAgeSeconds: Math.floor(maxAgeMs / 1000),
          backups: entries.filter((e) => e.manifest !== undefined).length,
          newest: ageJson(freshness.newest),
          newestVerified: ageJson(freshness.newestVerified),
        });
      } else {
        const describe = (age: BackupAge | undefined) =>
          age ? `${age.id}, ${formatDuration(age.ageMs)} old` : 'none';
        printLine(`${bold('target')}           ${target.url}`);
        printLine(`${bold('newest backup')}    ${describe(freshness.newest)}`);
        printLine(`${bold('newest verified')}  ${describe(freshness.newestVerified)}`);
        if (ok) printLine(`ok: younger than ${options.maxAge}`);
      }
      if (ok) return;
      const what = options.verified ? 'verified backup' : 'complete backup';
      const remedy = options.verified
        ? "prove one restorable with 'athanor backup verify' and check the restore drills run " +
          `(${scheduleEnv.drillSchedule}, metric athanor_backup_runs_total{kind="drill",outcome="error"})`
        : "take one now with 'athanor backup create' and check the scheduled backups run " +
          `(${scheduleEnv.schedule}, the server or 'athanor backup schedule' log, metric ` +
          'athanor_backup_runs_total{outcome="error"})';
      throw new AthanorError(
        'backup_stale',
        subject
          ? `the newest ${what} at ${target.url} (${subject.id}) is ${formatDuration(subject.ageMs)} old, ` +
              `older than ${options.maxAge}: ${remedy}`
          : `there is no ${what} at ${target.url}: ${remedy}`,
        {
          details: {
            target: target.url,
            maxAgeSeconds: Math.floor(maxAgeMs / 1000),
            newest: ageJson(subject),
          },
        },
      );
    });

  return command;
}

/** The scheduler's log as text lines on stderr. */
function textLog(message: string, fields: SchedulerLogFields): void {
  note(`${new Date().toISOString()} ${fields.level.padEnd(5)} ${message}`);
}

/** The scheduler's log as one JSON object per line on stdout (`--json`). */
function jsonLog(message: string, fields: SchedulerLogFields): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), message, ...fields })}\n`);
}

/** Resolves at the first SIGTERM or SIGINT; a second one exits at once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      const now = (again: NodeJS.Signals) => {
        // A backup cut short leaves no manifest, so it is not a backup; prune removes its files.
        note(`received ${again} again: exiting without waiting`);
        process.exit(1);
      };
      process.once('SIGTERM', now);
      process.once('SIGINT', now);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

function verificationFailed(record: VerificationRecord): AthanorError {
  return new AthanorError(
    'backup_corrupt',
    `backup ${record.backupId} failed verification: ${record.problems.map((p) => p.file).join(', ')}. ` +
      `Do not rely on it; take a new backup and check the target's storage`,
    { details: { problems: record.problems } },
  );
}
