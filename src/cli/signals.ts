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
