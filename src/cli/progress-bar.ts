import type CliProgress from 'cli-progress';
import { createRequire } from 'node:module';

export interface ProgressBar {
  update(done: number, total: number, what: string): void;
  stop(): void;
}

/** A progress bar on stderr when it is a terminal; otherwise nothing. */
export function progressBar(label: string): ProgressBar {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  // Loaded here, for a terminal only: a script's call does not pay for cli-progress.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
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
