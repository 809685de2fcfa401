import { readdir, readFile } from 'node:fs/promises';

/** The nginx master and the worker processes it runs now. */
export interface ProxyWorkers {
  readonly masterPid: number;
  readonly workerPids: readonly number[];
}

interface ProcessFacts {
  readonly parentPid: number;
  /** `Z` for a process that exited and was not reaped yet. */
  readonly state: string;
}

async function processFacts(pid: number): Promise<ProcessFacts | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { parentPid: Number(parent), state: state ?? '' };
  } catch {
    return undefined;
  }
}

async function isWorkerOf(masterPid: number, pid: number): Promise<boolean> {
  const facts = await processFacts(pid);
  if (!facts || facts.parentPid !== masterPid || facts.state === 'Z') return false;
  const title = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return title.startsWith('nginx: worker process');
}

/**
 * nginx's workers, found from its pid file and /proc: undefined when there is no pid file, no
 * such master, no /proc (another OS, another pid namespace) or no worker, so the caller falls
 * back to watching the retired colour alone.
 */
export async function proxyWorkers(pidFile: string): Promise<ProxyWorkers | undefined> {
  let masterPid: number;
  try {
    masterPid = Number((await readFile(pidFile, 'utf8')).trim());
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(masterPid) || masterPid <= 0 || !(await processFacts(masterPid)))
    return undefined;
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const workerPids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    if (await isWorkerOf(masterPid, Number(entry))) workerPids.push(Number(entry));
  }
  return workerPids.length > 0 ? { masterPid, workerPids } : undefined;
}

/**
 * Those of `before`'s workers still running. After a reload nginx's old workers finish the
 * requests they hold and exit; until then they still send requests to the retired colour.
 */
export async function workersStillRunning(before: ProxyWorkers): Promise<number[]> {
  const running: number[] = [];
  for (const pid of before.workerPids) if (await isWorkerOf(before.masterPid, pid)) running.push(pid);
  return running;
}
