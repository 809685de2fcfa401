// CPU time of processes from /proc (Linux): a process and all its live descendants, in ms.
import { readdirSync, readFileSync } from 'node:fs';

const ticksPerSecond = 100; // USER_HZ; the kernel reports /proc/<pid>/stat times in these units

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** Per-pid CPU ticks of `rootPid` and its descendants, to diff two snapshots with `cpuMsBetween`. */
export function cpuSnapshot(rootPid) {
  const all = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (s) all.set(Number(name), s);
  }
  const tree = new Map();
  const add = (pid) => {
    const s = all.get(pid);
    if (!s) return;
    tree.set(pid, s.ticks);
    for (const [child, c] of all) if (c.ppid === pid) add(child);
  };
  add(rootPid);
  return tree;
}

/** CPU ms spent between two snapshots by the processes seen in the second one. */
export function cpuMsBetween(before, after) {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return (ticks * 1000) / ticksPerSecond;
}
