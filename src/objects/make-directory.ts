import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * `mkdir -p`, one level at a time. Node's own `{ recursive: true }` never returns when a parent
 * exists but refuses children without saying why (ENOENT under /proc, some FUSE mounts); here every
 * level is tried at most twice, so each call ends with the directory or an error naming it.
 */
export async function makeDirectory(dir: string, mode?: number): Promise<void> {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let current = target; ; current = path.dirname(current)) {
    const facts = await stat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (facts) {
      if (!facts.isDirectory())
        throw Object.assign(new Error(`${current} is not a directory`), { code: 'ENOTDIR' });
      break;
    }
    if (path.dirname(current) === current) break;
    missing.unshift(current);
  }
  for (const level of missing) {
    await mkdir(level, mode === undefined ? undefined : { mode }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
}
