import type { Command } from 'commander';
import type { Config } from '../config/resolve-config.js';
import { chooseBackupTarget } from '../ops/backup/backup-env.js';
import type { BackupEntry, VerificationRecord } from '../ops/backup/backup-target.js';
import type { BackupManifest } from '../ops/backup/manifest.js';
import type { BackupTarget } from '../ops/backup/target.js';
import type { SchedulerLogFields } from '../ops/schedule/backup-scheduler.js';
import type { Column } from './output.js';
import { note } from './output.js';

// The backup code pulls in the S3 SDK and age; loading it only when a backup verb runs keeps every
// other command's start-up fast.
export const load = () => import('../ops/backup/index.js');

/** The target a backup is written to, checked before anything is written. */
export async function writableTarget(command: Command, config: Config): Promise<BackupTarget> {
  return (await load()).BackupTarget.open(targetChoice(command, config), { forWriting: true });
}

/** The target to read backups from (list, status, verify, restore, prune). */
export async function resolveTarget(command: Command, config: Config): Promise<BackupTarget> {
  return (await load()).BackupTarget.open(targetChoice(command, config));
}

function targetChoice(command: Command, config: Config) {
  return chooseBackupTarget(config, command.optsWithGlobals<{ target?: string }>().target);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function manifestSummary(manifest: BackupManifest, targetUrl: string) {
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

export function entryJson(entry: BackupEntry) {
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

/** The columns of `athanor backup list`. */
export const backupListColumns: readonly Column<BackupEntry>[] = [
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
];

/** The scheduler's log as text lines on stderr. */
export function textLog(message: string, fields: SchedulerLogFields): void {
  note(`${new Date().toISOString()} ${fields.level.padEnd(5)} ${message}`);
}

/** The scheduler's log as one JSON object per line on stdout (`--json`). */
export function jsonLog(message: string, fields: SchedulerLogFields): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), message, ...fields })}\n`);
}
