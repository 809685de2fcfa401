import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ComputeDriver, DriverLaunch, LaunchRequest } from './driver.js';
import { athanorCommand, DriverError, safeName } from './driver.js';

export interface LocalDriverOptions {
  readonly manager: string;
  /** Where each launch's pid file and log live; a restarted manager reads it back. */
  readonly stateDir: string;
  /** Environment of the services (server URL, compute identity and key). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface LaunchFile {
  readonly pid: number;
  readonly startedAtMs: number;
  readonly standing: boolean;
}

/** True when `pid` runs and is this launch's service (not a later process that reused the pid). */
async function isLaunchProcess(pid: number, launch: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').includes(launch);
  } catch {
    // No /proc (macOS): the pid check is all there is.
    return true;
  }
}

/**
 * Services as processes on this machine, detached from the manager so they outlive its restart;
 * each launch is a pid file in the state directory.
 */
export class LocalDriver implements ComputeDriver {
  readonly name = 'local';
  readonly #dir: string;

  constructor(private readonly options: LocalDriverOptions) {
    this.#dir = path.join(options.stateDir, safeName(options.manager));
  }

  async start(requests: readonly LaunchRequest[]): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const [node, ...entry] = athanorCommand();
    for (const request of requests) {
      const log = openSync(path.join(this.#dir, `${request.launch}.log`), 'a');
      try {
        const child = spawn(node!, [...entry, ...request.args], {
          detached: true,
          stdio: ['ignore', log, log],
          env: { ...this.options.env },
        });
        const pid = await new Promise<number>((resolve, reject) => {
          child.once('spawn', () => resolve(child.pid!));
          child.once('error', (error) => reject(new DriverError(`cannot start ${node}: ${error.message}`)));
        });
        child.unref();
        const file: LaunchFile = { pid, startedAtMs: Date.now(), standing: request.standing };
        await writeFile(path.join(this.#dir, `${request.launch}.json`), JSON.stringify(file));
      } finally {
        closeSync(log);
      }
    }
  }

  async list(): Promise<DriverLaunch[]> {
    let names: string[];
    try {
      names = (await readdir(this.#dir)).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    const launches: DriverLaunch[] = [];
    for (const name of names) {
      const launch = name.slice(0, -'.json'.length);
      let file: LaunchFile;
      try {
        file = JSON.parse(await readFile(path.join(this.#dir, name), 'utf8')) as LaunchFile;
      } catch {
        continue;
      }
      if (await isLaunchProcess(file.pid, launch)) {
        launches.push({
          launch,
          state: 'running',
          startedAtMs: file.startedAtMs,
          standing: file.standing,
          handle: String(file.pid),
        });
      } else {
        // It ended (by itself, or killed): its pid file goes, its log stays for the operator.
        await rm(path.join(this.#dir, name), { force: true });
      }
    }
    return launches;
  }

  async stop(launch: DriverLaunch): Promise<void> {
    try {
      process.kill(Number(launch.handle), 'SIGTERM');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}
