import type { Command } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import type { RetentionPolicy } from '../../ops/backup/retention.js';
import type { BackupAge } from '../../ops/schedule/backup-freshness.js';
import { backupAgeJson, freshnessVerdict } from '../../ops/schedule/backup-freshness.js';
import { formatDuration, parseDuration } from '../../domain/parse-duration.js';
import { resolveScheduleSettings, scheduleEnv } from '../../ops/schedule/schedule-settings.js';
import { jsonLog, load, resolveTarget, textLog } from '../backup-support.js';
import { commandConfig, confirm, integerOption, wantsJson } from '../context.js';
import { bold, note, printJson, printLine, printTable } from '../output.js';
import { untilSignal } from '../signals.js';

/** `backup prune|schedule|status`: keeping, taking on a schedule, and watching backups. */
export function addRetentionVerbs(command: Command): void {
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
        config,
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
      // The store and its drivers load only when this verb runs, not for every --help.
      const { openStore } = await import('../../store/open-store.js');
      const store = await openStore(config);
      try {
        // A backup cut short by a second signal leaves no manifest, so it is not a backup; prune
        // removes its files.
        const stopped = untilSignal();
        const scheduler = startBackupScheduler({
          store,
          config,
          ...settings,
          target: (await load()).BackupTarget.open(settings.target),
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
      const pitr = await import('../../ops/pitr/index.js');
      const continuous = await pitr.continuousProtection(config, target, 60_000);
      const verdict = freshnessVerdict(entries, new Date(), {
        maxAgeMs,
        maxAgeText: options.maxAge,
        verified: options.verified === true,
        targetUrl: target.url,
      });
      if (wantsJson(cmd)) {
        printJson({
          ok: verdict.ok,
          target: target.url,
          verified: options.verified === true,
          maxAgeSeconds: Math.floor(maxAgeMs / 1000),
          backups: verdict.backups,
          newest: backupAgeJson(verdict.newest),
          newestVerified: backupAgeJson(verdict.newestVerified),
          pointInTime: continuous ? pitr.verdictJson(continuous) : null,
        });
      } else {
        const describe = (age: BackupAge | undefined) =>
          age ? `${age.id}, ${formatDuration(age.ageMs)} old` : 'none';
        printLine(`${bold('target')}           ${target.url}`);
        printLine(`${bold('newest backup')}    ${describe(verdict.newest)}`);
        printLine(`${bold('newest verified')}  ${describe(verdict.newestVerified)}`);
        if (continuous) for (const line of pitr.verdictLines(continuous)) printLine(`point in time: ${line}`);
        if (verdict.ok) printLine(`ok: younger than ${options.maxAge}`);
      }
      if (verdict.problem) throw verdict.problem;
      if (continuous?.problem) throw continuous.problem;
    });
}
