import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { NetworkResultView } from '../domain/api-views.js';
import type { ResultOutcome } from '../domain/outcomes.js';

/** What a download asks of the user client: pages of a network's results, and one result's bytes. */
export interface ResultSource {
  networkResults(
    networkKey: string,
    query: { readonly outcome?: ResultOutcome; readonly limit?: number; readonly after?: string },
  ): Promise<NetworkResultView[]>;
  downloadResult(id: string): Promise<Readable>;
}

/** Where results are cached by default: `$XDG_CACHE_HOME/athanor/results` or `~/.cache/athanor/results`. */
export function defaultResultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'athanor', 'results');
}

export interface DownloadNetworkResultsOptions {
  /** Downloads at once; default 4. */
  readonly concurrency?: number;
  /** Only results of this outcome; default `ok`. */
  readonly outcome?: ResultOutcome;
  /** The content-addressed local cache; default {@link defaultResultCacheDir}. `false`: no cache. */
  readonly cacheDir?: string | false;
  /** The cache's size cap in bytes; the least recently used entries go first. Default 1 GiB. */
  readonly cacheMaxBytes?: number;
  readonly onProgress?: (progress: DownloadProgress) => void;
}

export interface DownloadProgress {
  readonly done: number;
  readonly total: number;
  readonly bytesDownloaded: number;
}

export interface DownloadSummary {
  readonly total: number;
  /** Fetched from the server. */
  readonly downloaded: number;
  /** Copied from the local cache. */
  readonly fromCache: number;
  /** Already in the folder with the right sha256. */
  readonly present: number;
  readonly bytesDownloaded: number;
  /** The folder's index: one entry per transformation, with the file holding its result. */
  readonly index: string;
}

async function sha256OfFile(file: string): Promise<{ sha256: string; sizeBytes: number } | undefined> {
  try {
    const hash = createHash('sha256');
    let sizeBytes = 0;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      sizeBytes += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), sizeBytes };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Whether `file` holds exactly the bytes named by `sha256`. */
async function holds(file: string, sha256: string): Promise<boolean> {
  return (await sha256OfFile(file))?.sha256 === sha256;
}

const cachePath = (dir: string, sha256: string) => path.join(dir, sha256.slice(0, 2), sha256);

/** Removes the least recently used entries until the cache fits its cap. */
async function trimCache(dir: string, maxBytes: number): Promise<void> {
  const entries: { file: string; sizeBytes: number; usedMs: number }[] = [];
  for (const prefix of await readdir(dir).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(dir, prefix)).catch(() => [] as string[])) {
      const file = path.join(dir, prefix, name);
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile()) entries.push({ file, sizeBytes: info.size, usedMs: info.mtimeMs });
    }
  }
  let total = entries.reduce((sum, e) => sum + e.sizeBytes, 0);
  for (const entry of entries.sort((a, b) => a.usedMs - b.usedMs)) {
    if (total <= maxBytes) break;
    await rm(entry.file, { force: true });
    total -= entry.sizeBytes;
  }
}

/** Every result of the network, page by page. */
async function listAll(client: ResultSource, networkKey: string, outcome: ResultOutcome) {
  const all: NetworkResultView[] = [];
  for (let after: string | undefined; ;) {
    const page = await client.networkResults(networkKey, {
      outcome,
      limit: 10_000,
      ...(after ? { after } : {}),
    });
    all.push(...page);
    const last = page.at(-1);
    if (!last || page.length < 10_000) return all;
    after = last.transformation;
  }
}

/**
 * Downloads every result of a network into `dir`, one file per transformation (named by its key)
 * plus `index.json`. Resumable: a file already holding the right bytes is kept, one the cache
 * holds is copied from it, and each download lands in a temporary file that is renamed into
 * place only once its sha256 matches. Cache entries are checked the same way before use; a
 * damaged one is fetched again.
 */
export async function downloadNetworkResults(
  client: ResultSource,
  networkKey: string,
  dir: string,
  options: DownloadNetworkResultsOptions = {},
): Promise<DownloadSummary> {
  const results = (await listAll(client, networkKey, options.outcome ?? 'ok')).filter(
    (r): r is NetworkResultView & { sha256: string } => r.sha256 !== null,
  );
  const cacheDir = options.cacheDir === false ? undefined : (options.cacheDir ?? defaultResultCacheDir());
  await mkdir(dir, { recursive: true });
  let done = 0;
  let downloaded = 0;
  let fromCache = 0;
  let present = 0;
  let bytesDownloaded = 0;
  const report = () => options.onProgress?.({ done, total: results.length, bytesDownloaded });

  const fetchOne = async (result: NetworkResultView & { sha256: string }) => {
    const file = path.join(dir, result.transformation);
    if (await holds(file, result.sha256)) {
      present++;
      return;
    }
    const cached = cacheDir ? cachePath(cacheDir, result.sha256) : undefined;
    if (cached && (await holds(cached, result.sha256))) {
      const now = new Date();
      await utimes(cached, now, now);
      await copyFile(cached, `${file}.partial`);
      await rename(`${file}.partial`, file);
      fromCache++;
      return;
    }
    const partial = `${file}.${randomBytes(4).toString('hex')}.partial`;
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytesDownloaded += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      await pipeline(await client.downloadResult(result.result), hashing, createWriteStream(partial));
      const got = hash.digest('hex');
      if (got !== result.sha256) {
        throw new Error(
          `result ${result.result} arrived with sha256 ${got}, not ${result.sha256}: run again`,
        );
      }
      if (cached) {
        await mkdir(path.dirname(cached), { recursive: true });
        const cachePartial = `${cached}.${randomBytes(4).toString('hex')}.partial`;
        await copyFile(partial, cachePartial);
        await rename(cachePartial, cached);
      }
      await rename(partial, file);
      downloaded++;
    } finally {
      await rm(partial, { force: true });
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < results.length) {
      const result = results[next++]!;
      await fetchOne(result);
      done++;
      report();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  if (cacheDir) await trimCache(cacheDir, options.cacheMaxBytes ?? 1024 ** 3);

  const index = path.join(dir, 'index.json');
  const entries = results.map((r) => ({ ...r, file: r.transformation }));
  await writeFile(`${index}.partial`, `${JSON.stringify(entries, null, 2)}\n`);
  await rename(`${index}.partial`, index);
  return { total: results.length, downloaded, fromCache, present, bytesDownloaded, index };
}
