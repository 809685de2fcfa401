import { note } from './output.js';

/**
 * Resolves at the first SIGTERM or SIGINT, so the command can stop cleanly; a second one exits at
 * once (status 1) without waiting for that.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      const now = (again: NodeJS.Signals) => {
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

/**
 * Waits for SIGTERM or SIGINT, then runs `stop`; if it has not finished `deadlineMs` after the
 * signal, or a second signal comes, the process exits with status 1 (as Kubernetes would kill it
 * at the end of terminationGracePeriodSeconds, but with a line saying why). Pass `signalled`
 * (an `untilSignal()` made before saying the server is up) so that a signal sent as soon as that
 * line appears is caught rather than killing the process outright.
 */
export async function stopOnSignal(
  stop: (signal: NodeJS.Signals) => Promise<void>,
  deadlineMs: number,
  signalled: Promise<NodeJS.Signals> = untilSignal(),
): Promise<void> {
  const signal = await signalled;
  note(`received ${signal}: stopping (at most ${deadlineMs} ms; send it again to exit now)`);
  const deadline = setTimeout(() => {
    note(`still stopping after ${deadlineMs} ms (ATHANOR_SHUTDOWN_TIMEOUT_MS): exiting without waiting`);
    process.exit(1);
  }, deadlineMs);
  deadline.unref();
  try {
    await stop(signal);
  } finally {
    clearTimeout(deadline);
  }
}
