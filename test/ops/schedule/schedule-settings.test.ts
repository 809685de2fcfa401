import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/resolve-config.js';
import { formatDuration, parseDuration } from '../../../src/domain/parse-duration.js';
import { resolveScheduleSettings } from '../../../src/ops/schedule/schedule-settings.js';

const resolve = (
  profile: 'serve' | 'up' | 'sidecar',
  env: Record<string, string> = {},
  overrides: Parameters<typeof resolveScheduleSettings>[0]['overrides'] = {},
) =>
  resolveScheduleSettings({
    profile,
    config: resolveConfig({ dataDir: '/srv/athanor' }, env, '/'),
    overrides,
  });

describe('backup schedule settings', () => {
  it('serve schedules nothing unless told; up and the sidecar back up hourly, keep 24h + 7d, drill daily', () => {
    expect(resolve('serve')).toEqual({
      schedule: undefined,
      drillSchedule: undefined,
      retention: undefined,
      target: { url: 'file:/srv/athanor/backups', setting: 'default' },
    });
    for (const profile of ['up', 'sidecar'] as const) {
      expect(resolve(profile)).toEqual({
        schedule: '0 * * * *',
        drillSchedule: '30 3 * * *',
        retention: { keepHourly: 24, keepDaily: 7 },
        target: { url: 'file:/srv/athanor/backups', setting: 'default' },
      });
    }
  });

  it('reads the environment; flags win; off turns a part off', () => {
    const env = {
      ATHANOR_BACKUP_SCHEDULE: '15 */6 * * *',
      ATHANOR_BACKUP_KEEP: 'daily=7, weekly=4',
      ATHANOR_BACKUP_KEEP_LAST: '3',
      ATHANOR_BACKUP_TARGET: 's3://bucket/athanor',
    };
    expect(resolve('serve', env)).toEqual({
      schedule: '15 */6 * * *',
      drillSchedule: '30 3 * * *',
      retention: { keepDaily: 7, keepWeekly: 4, keepLast: 3 },
      target: {
        url: 's3://bucket/athanor',
        setting: 'ATHANOR_BACKUP_TARGET (or "backupTarget" in the config file)',
      },
    });
    expect(
      resolve('serve', env, {
        schedule: '0 2 * * *',
        drillSchedule: 'off',
        keep: 'monthly=12',
        targetUrl: 'file:x',
      }),
    ).toEqual({
      schedule: '0 2 * * *',
      drillSchedule: undefined,
      retention: { keepMonthly: 12 },
      target: { url: 'file:x', setting: '--target' },
    });
    expect(resolve('up', { ATHANOR_BACKUP_SCHEDULE: 'off', ATHANOR_BACKUP_KEEP: 'off' })).toMatchObject({
      schedule: undefined,
      drillSchedule: undefined,
      retention: undefined,
    });
    expect(resolve('serve', { ATHANOR_BACKUP_DRILL_SCHEDULE: '0 4 * * 0' })).toMatchObject({
      schedule: undefined,
      drillSchedule: '0 4 * * 0',
    });
    expect(resolve('up', { ATHANOR_BACKUP_KEEP_DAILY: '30' }).retention).toEqual({ keepDaily: 30 });
  });

  it('names the variable or flag holding a bad value', () => {
    expect(() => resolve('serve', { ATHANOR_BACKUP_SCHEDULE: '0 25 * * *' })).toThrow(
      /ATHANOR_BACKUP_SCHEDULE: '0 25 \* \* \*' is not a cron schedule/,
    );
    expect(() => resolve('up', {}, { drillSchedule: 'daily' })).toThrow(/--drill-schedule: 'daily'/);
    expect(() => resolve('up', { ATHANOR_BACKUP_KEEP: 'hourly:24' })).toThrow(
      /ATHANOR_BACKUP_KEEP: 'hourly:24' is not a retention rule/,
    );
    expect(() => resolve('up', { ATHANOR_BACKUP_KEEP_WEEKLY: 'four' })).toThrow(
      /ATHANOR_BACKUP_KEEP_WEEKLY \(backupKeepWeekly\) must be a whole number/,
    );
    expect(() => resolve('up', { ATHANOR_BACKUP_KEEP: 'daily=0' })).toThrow(/every rule keeps 0 backups/);
    expect(() => resolve('up', { ATHANOR_BACKUP_KEEP: 'yearly=x' })).toThrow(
      expect.objectContaining({ code: 'invalid_config' }),
    );
  });
});

describe('durations', () => {
  it('reads 90m, 26h, 7d and combinations', () => {
    expect(parseDuration('90m', '--max-age')).toBe(90 * 60_000);
    expect(parseDuration('26h', '--max-age')).toBe(26 * 3_600_000);
    expect(parseDuration('7d', '--max-age')).toBe(7 * 86_400_000);
    expect(parseDuration('1d12h', '--max-age')).toBe(36 * 3_600_000);
    expect(parseDuration('1.5h', '--max-age')).toBe(90 * 60_000);
  });

  it('refuses anything else, naming the flag', () => {
    for (const bad of ['', '26', 'h', '26 hours', '-1h', '0m', '3y']) {
      expect(() => parseDuration(bad, '--max-age')).toThrow(
        expect.objectContaining({ code: 'invalid_argument', message: expect.stringContaining('--max-age') }),
      );
    }
  });

  it('prints ages for people', () => {
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(3 * 3_600_000 + 12 * 60_000 + 5000)).toBe('3h 12m');
    expect(formatDuration(30 * 3_600_000)).toBe('1d 6h');
    expect(formatDuration(7 * 86_400_000)).toBe('7d');
  });
});
