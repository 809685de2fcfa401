import { setTimeout as sleep } from 'node:timers/promises';
import type { NetworkProgress } from '../client/network-tasks.js';
import { networkProgress } from '../client/network-tasks.js';
import type { TaskStatus, UserClient } from '../client/user-client.js';
import { AthanorError } from '../domain/errors.js';
import { note } from './output.js';

const shownStatuses: readonly TaskStatus[] = [
  'complete',
  'running',
  'waiting',
  'error',
  'invalid',
  'deleted',
];

/** `complete 2  running 1  waiting 0 …`, every status that has tasks (complete always). */
export function describeCounts(progress: NetworkProgress): string {
  return shownStatuses
    .filter((s) => s === 'complete' || (progress.counts[s] ?? 0) > 0)
    .map((s) => `${s} ${progress.counts[s] ?? 0}`)
    .join('  ');
}

/**
 * Follows a network until every task has settled: a progress bar on a terminal, a line per
 * change otherwise (both on stderr). Returns the final counts; throws when `timeoutMs` passes.
 */
export async function watchNetwork(
  client: UserClient,
  networkKey: string,
  options: { intervalMs: number; timeoutMs?: number | undefined },
): Promise<NetworkProgress> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  // cli-progress loads only for a bar on a terminal: a script's call does not pay for it.
  const cliProgress = process.stderr.isTTY ? (await import('cli-progress')).default : undefined;
  const bar = cliProgress
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${networkKey.slice(0, 12)}… [{bar}] {value}/{total} settled  {counts}`,
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastLine = '';
  const stopBar = () => {
    if (started) bar?.stop();
  };
  process.once('SIGINT', stopBar);
  try {
    for (;;) {
      const progress = await networkProgress(client, networkKey);
      if (progress.total === 0) {
        throw new AthanorError(
          'invalid_argument',
          `network ${networkKey} has no tasks to watch: create them with 'athanor task create --network ${networkKey} --action'`,
        );
      }
      const counts = describeCounts(progress);
      if (bar) {
        if (!started) bar.start(progress.total, progress.settled, { counts });
        started = true;
        bar.setTotal(progress.total);
        bar.update(progress.settled, { counts });
      } else if (counts !== lastLine) {
        note(`${progress.settled}/${progress.total} settled: ${counts}`);
        lastLine = counts;
      }
      if (progress.finished) return progress;
      if (Date.now() >= deadline) {
        throw new AthanorError(
          'timed_out',
          `network ${networkKey} has not finished within the --timeout: ${counts}`,
          { details: { counts: progress.counts } },
        );
      }
      await sleep(Math.min(options.intervalMs, Math.max(0, deadline - Date.now())));
    }
  } finally {
    stopBar();
    process.off('SIGINT', stopBar);
  }
}
