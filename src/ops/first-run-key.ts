import { rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * The key `athanor up` generated for the first-run `admin` identity, kept in a file only its
 * owner can read so that a scrolled-away terminal does not lose it. Setting a new key for
 * `admin` deletes the file: from then on the key lives only where the operator put it.
 */
export function firstRunKeyPath(dataDir: string): string {
  return path.join(dataDir, 'admin.key');
}

export async function writeFirstRunKey(dataDir: string, key: string): Promise<string> {
  const file = firstRunKeyPath(dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'w' });
  return file;
}

/** Deletes the first-run key file; true if there was one. */
export async function removeFirstRunKey(dataDir: string): Promise<boolean> {
  try {
    await rm(firstRunKeyPath(dataDir));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
