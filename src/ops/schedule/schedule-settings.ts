import { Cron } from 'croner';
import type { Config, SettingName } from '../../config/resolve-config.js';
import { settingSpecs } from '../../config/resolve-config.js';
import { AthanorError } from '../../domain/errors.js';
import type { BackupTargetChoice } from '../backup/backup-env.js';
import { chooseBackupTarget } from '../backup/backup-env.js';
import type { RetentionPolicy } from '../backup/retention.js';

/** The environment variables of scheduled backups, for the code, `--help` and the docs. */
export const scheduleEnv = {
  /** Cron schedule of backups (UTC), or `off`. */
  schedule: settingSpecs.backupSchedule.env,
  /** Cron schedule of restore drills (UTC), or `off`. */
  drillSchedule: settingSpecs.backupDrillSchedule.env,
  /** Retention after each scheduled backup: `hourly=24,daily=7` (or `off`). */
  keep: settingSpecs.backupKeep.env,
} as const;

/**
 * Who runs the scheduler, which decides the defaults: `serve` schedules nothing unless told;
 * `up` (the embedded single host) and the `backup schedule` sidecar back up hourly, keep 24 hourly
 * and 7 daily backups, and run a restore drill daily.
 */
export type ScheduleProfile = 'serve' | 'up' | 'sidecar';

export const scheduleDefaults = {
  schedule: '0 * * * *',
  drillSchedule: '30 3 * * *',
  retention: { keepHourly: 24, keepDaily: 7 },
} as const satisfies { schedule: string; drillSchedule: string; retention: RetentionPolicy };

/** What the backup scheduler runs, resolved from flags, the environment and the profile's defaults. */
export interface ScheduleSettings {
  /** Cron schedule of backups (each followed by a prune), in UTC; undefined: no scheduled backups. */
  readonly schedule: string | undefined;
  /** Cron schedule of restore drills, in UTC; undefined: no drills. */
  readonly drillSchedule: string | undefined;
  /** Retention applied after each scheduled backup; undefined: never prune. */
  readonly retention: RetentionPolicy | undefined;
  /** The backup target (`--target`, else `ATHANOR_BACKUP_TARGET`, default `file:<data dir>/backups`). */
  readonly target: BackupTargetChoice;
}

export interface ScheduleOverrides {
  readonly schedule?: string | undefined;
  readonly drillSchedule?: string | undefined;
  /** A retention in the `ATHANOR_BACKUP_KEEP` form. */
  readonly keep?: string | undefined;
  readonly targetUrl?: string | undefined;
}

const offWords = new Set(['off', 'none', 'false', 'no', '0']);
const isOff = (value: string) => offWords.has(value.trim().toLowerCase());

/** Checks a cron expression (5 fields, or 6 with seconds first); throws `invalid_config` naming `source`. */
export function assertCronSchedule(schedule: string, source: string): void {
  try {
    new Cron(schedule, { timezone: 'Etc/UTC' });
  } catch (cause) {
    throw new AthanorError(
      'invalid_config',
      `${source}: '${schedule}' is not a cron schedule (${(cause as Error).message}). Use five fields ` +
        `'minute hour day month weekday' in UTC, e.g. '0 * * * *' for hourly, or 'off'`,
      { cause },
    );
  }
}

const keepNames: Readonly<Record<string, keyof RetentionPolicy>> = {
  last: 'keepLast',
  hourly: 'keepHourly',
  daily: 'keepDaily',
  weekly: 'keepWeekly',
  monthly: 'keepMonthly',
  yearly: 'keepYearly',
};

/** The single-rule settings (`ATHANOR_BACKUP_KEEP_<RULE>`), each beside its rule. */
const keepRuleSettings = {
  keepLast: 'backupKeepLast',
  keepHourly: 'backupKeepHourly',
  keepDaily: 'backupKeepDaily',
  keepWeekly: 'backupKeepWeekly',
  keepMonthly: 'backupKeepMonthly',
  keepYearly: 'backupKeepYearly',
} as const satisfies Record<keyof RetentionPolicy, SettingName>;

type ScheduleConfig = Pick<
  Config,
  | 'backupTarget'
  | 'dataDir'
  | 'backupSchedule'
  | 'backupDrillSchedule'
  | 'backupKeep'
  | (typeof keepRuleSettings)[keyof RetentionPolicy]
>;

/** Parses `hourly=24,daily=7` (also `last=`, `weekly=`, `monthly=`, `yearly=`); throws `invalid_config`. */
export function parseRetentionPolicy(text: string, source: string): RetentionPolicy {
  const policy: Partial<Record<keyof RetentionPolicy, number>> = {};
  for (const part of text.split(/[\s,]+/).filter((p) => p !== '')) {
    const match = /^([a-z]+)=(\d+)$/i.exec(part);
    const option = match ? keepNames[match[1]?.toLowerCase() ?? ''] : undefined;
    if (!match || !option) {
      throw new AthanorError(
        'invalid_config',
        `${source}: '${part}' is not a retention rule; write rules like 'hourly=24,daily=7' ` +
          `(rules: ${Object.keys(keepNames).join(', ')})`,
      );
    }
    policy[option] = Number(match[2]);
  }
  return policy;
}

function retentionFrom(
  config: ScheduleConfig,
  override: string | undefined,
): RetentionPolicy | undefined | 'off' {
  const combined = override ?? nonEmpty(config.backupKeep);
  if (combined !== undefined && isOff(combined)) return 'off';
  const policy: Partial<Record<keyof RetentionPolicy, number>> = {
    ...(combined !== undefined
      ? parseRetentionPolicy(combined, override !== undefined ? '--keep' : scheduleEnv.keep)
      : {}),
  };
  // With --keep on the command line, the single-rule settings do not mix in: the flag is the policy.
  if (override === undefined) {
    for (const [option, setting] of Object.entries(keepRuleSettings) as [
      keyof RetentionPolicy,
      SettingName,
    ][]) {
      const count = config[setting as (typeof keepRuleSettings)[keyof RetentionPolicy]];
      if (count !== undefined) policy[option] = count;
    }
  }
  return Object.keys(policy).length === 0 ? undefined : policy;
}

function scheduleFrom(
  override: string | undefined,
  configured: string | undefined,
  variable: string,
  flag: string,
  fallback: string | undefined,
): string | undefined {
  const value = override ?? nonEmpty(configured);
  if (value === undefined) return fallback;
  if (isOff(value)) return undefined;
  assertCronSchedule(value.trim(), override !== undefined ? flag : variable);
  return value.trim();
}

/**
 * Resolves what the backup scheduler should run: flags (overrides) > the `backupSchedule`,
 * `backupDrillSchedule`, `backupKeep` and `backupTarget` settings > the profile's defaults. `off`
 * disables a part; the single-rule `backupKeep<Rule>` settings add to `backupKeep`.
 * Throws `invalid_config` naming the variable for a bad value.
 */
export function resolveScheduleSettings(options: {
  readonly profile: ScheduleProfile;
  readonly config: ScheduleConfig;
  readonly overrides?: ScheduleOverrides;
}): ScheduleSettings {
  const overrides = options.overrides ?? {};
  const autopilot = options.profile !== 'serve';
  const schedule = scheduleFrom(
    overrides.schedule,
    options.config.backupSchedule,
    scheduleEnv.schedule,
    '--schedule',
    autopilot ? scheduleDefaults.schedule : undefined,
  );
  // A drill needs backups to drill on: by default it comes with a backup schedule.
  const drillSchedule = scheduleFrom(
    overrides.drillSchedule,
    options.config.backupDrillSchedule,
    scheduleEnv.drillSchedule,
    '--drill-schedule',
    schedule !== undefined ? scheduleDefaults.drillSchedule : undefined,
  );
  const fromEnv = retentionFrom(options.config, overrides.keep);
  const retention =
    fromEnv === 'off' ? undefined : (fromEnv ?? (autopilot ? scheduleDefaults.retention : undefined));
  if (retention && Object.values(retention).every((count) => !count)) {
    throw new AthanorError(
      'invalid_config',
      `${scheduleEnv.keep}: every rule keeps 0 backups. Set at least one above 0, e.g. 'hourly=24,daily=7', ` +
        `or 'off' to never prune`,
    );
  }
  const target = chooseBackupTarget(options.config, overrides.targetUrl);
  return { schedule, drillSchedule, retention, target };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
