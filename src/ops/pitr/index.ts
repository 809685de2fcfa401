// Loaded on demand by the CLI: point-in-time recovery pulls in the backup code (S3 SDK, age).
import type { Config } from '../../config/resolve-config.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { formatDuration } from '../../domain/parse-duration.js';
import type { ArchiveVerdict } from './pgbackrest.js';
import type { ReplicationVerdict } from './replication-status.js';
import { pitrEngine } from './replication-settings.js';

export { pgbackrestVerdict, restorePgbackrestToTime, setupPgbackrest } from './pgbackrest.js';
export { replicationVerdict } from './replication-status.js';
export { pitrEngine } from './replication-settings.js';
export { parsePointInTime, restoreReplicaToTime } from './restore-to-time.js';

export type PitrVerdict = ReplicationVerdict | ArchiveVerdict;

const isArchive = (v: PitrVerdict): v is ArchiveVerdict => 'engine' in v && v.engine === 'pgbackrest';

/** A verdict as `--json` prints it: the problem as its message. */
export function verdictJson(verdict: PitrVerdict) {
  const { problem, ...rest } = verdict;
  return {
    engine: isArchive(verdict) ? 'pgbackrest' : 'sqlite-replica',
    ...rest,
    problem: problem?.message ?? null,
  };
}

/** A verdict as a terminal shows it. */
export function verdictLines(verdict: PitrVerdict): string[] {
  const lines = isArchive(verdict)
    ? [
        `engine            pgBackRest (${verdict.configFile})`,
        `restorable from   ${verdict.oldest ?? 'nothing yet'}`,
        `last archived     ${verdict.lastArchivedWal ?? 'none'}${verdict.lastArchivedAt ? ` at ${verdict.lastArchivedAt}` : ''}`,
        `waiting WAL       ${verdict.waitingWalFiles} files, lag ${formatDuration(verdict.lagMs)}`,
      ]
    : [
        `engine            SQLite replica at ${verdict.target}`,
        `restorable        ${verdict.oldest ? `${verdict.oldest} to ${verdict.newest}` : 'nothing yet'} (${verdict.generations} generations)`,
        `replicator        ${verdict.heartbeatAgeMs === undefined ? 'never reported' : `reported ${formatDuration(verdict.heartbeatAgeMs)} ago`}, lag ${verdict.lagMs === undefined ? '?' : formatDuration(verdict.lagMs)}`,
      ];
  lines.push(verdict.problem ? `FAILING: ${verdict.problem.message}` : 'ok');
  return lines;
}

/**
 * The point-in-time verdict `backup status` adds, or undefined where there is nothing continuous
 * to report (switched off, or never set up).
 */
export async function continuousProtection(
  config: Config,
  target: ObjectStore,
  maxLagMs: number,
): Promise<PitrVerdict | undefined> {
  if (config.pitr === false) return undefined;
  const { existsSync } = await import('node:fs');
  const { replicaRange } = await import('./sqlite-replica-restore.js');
  const { pgbackrestVerdict } = await import('./pgbackrest.js');
  const { replicationVerdict } = await import('./replication-status.js');
  if (pitrEngine(config) === 'pgbackrest')
    return existsSync(config.pgbackrestConfig) ? pgbackrestVerdict({ config, maxLagMs }) : undefined;
  return (await replicaRange(target)) ? replicationVerdict(target, { maxLagMs }) : undefined;
}
