import { randomBytes } from 'node:crypto';

const backupIdPattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]{6}$/;

/**
 * A new backup id: the UTC time to the second plus six random hex digits
 * (`20261122T013000Z-a1b2c3`), so ids sort by time and two backups in one second differ.
 */
export function newBackupId(now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function isBackupId(value: string): boolean {
  return backupIdPattern.test(value);
}

/** The instant a backup id names, or undefined for a string that is not a backup id. */
export function backupIdTime(id: string): Date | undefined {
  const match = backupIdPattern.exec(id);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match;
  return new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`);
}
