import { startedByNpm } from '../config/environment.js';

/**
 * `npx athanor …`, `npm exec` and `npm start` run the CLI as npm → `sh -c` → node. A SIGTERM sent
 * to npm's PID (what `$!` gives a script) ends npm and the shell but never reaches node, which
 * would keep serving, reparented, holding the port and the database. Under npm, then, a change of
 * parent is taken as the signal that was meant for us.
 */
export function stopWhenNpmParentExits(pollMs = 500): void {
  if (!startedByNpm()) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.stderr.write('athanor: the npm process that started this one exited: stopping\n');
    process.kill(process.pid, 'SIGTERM');
  }, pollMs);
  timer.unref();
}
