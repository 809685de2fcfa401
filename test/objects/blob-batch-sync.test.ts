import { createHash } from 'node:crypto';
import type * as FsPromises from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { blobKey, getBlob, putSmallBlobs } from '../../src/objects/blob-store.js';
import { FsObjectStore } from '../../src/objects/fs-object-store.js';
import { tempDir } from '../helpers/backends.js';
import { textOf } from './object-stores.js';

/** Every fsync and rename the file: store makes, in order. */
const events = vi.hoisted(() => [] as { op: 'sync' | 'rename'; path: string; to?: string }[]);

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof FsPromises>();
  return {
    ...fs,
    open: async (...args: Parameters<typeof fs.open>) => {
      const handle = await fs.open(...args);
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        await sync();
        events.push({ op: 'sync', path: String(args[0]) });
      };
      return handle;
    },
    rename: async (from: string, to: string) => {
      await fs.rename(from, to);
      events.push({ op: 'rename', path: from, to });
    },
  };
});

describe('a batch of small blobs in a file: store', () => {
  const root = tempDir('athanor-blob-batch-');

  it('fsyncs every blob before its rename and each directory once, after all its renames', async () => {
    const store = new FsObjectStore(path.join(root, 'objects'));
    // 200 results spread over at most 256 directories: many directories receive several.
    const bodies = Array.from({ length: 200 }, (_, i) => Buffer.from(`result of task ${i}`));
    bodies.push(Buffer.from('result of task 7')); // the same content twice is written once
    events.length = 0;
    const blobs = await putSmallBlobs(store, bodies);

    expect(blobs.map((b) => b.sha256)).toEqual(
      bodies.map((b) => createHash('sha256').update(b).digest('hex')),
    );
    for (const [i, blob] of blobs.entries())
      expect(await textOf(await getBlob(store, blob.sha256))).toBe(bodies[i]!.toString());

    const renames = events.filter((e) => e.op === 'rename');
    expect(renames.map((e) => e.to).sort()).toEqual(
      [...new Set(blobs.map((b) => path.join(root, 'objects', ...blobKey(b.sha256).split('/'))))].sort(),
    );
    const syncedAt = (file: string) => events.findIndex((e) => e.op === 'sync' && e.path === file);
    for (const [at, rename] of events.entries()) {
      if (rename.op !== 'rename') continue;
      // The bytes are on disk before the name appears...
      expect(syncedAt(rename.path)).toBeGreaterThanOrEqual(0);
      expect(syncedAt(rename.path)).toBeLessThan(at);
      // ...and the name is made durable by a sync of its directory that comes after it.
      const dir = path.dirname(rename.to!);
      expect(events.slice(at + 1).some((e) => e.op === 'sync' && e.path === dir)).toBe(true);
    }
    const dirs = new Set(renames.map((e) => path.dirname(e.to!)));
    const dirSyncs = events.filter((e) => e.op === 'sync' && dirs.has(e.path));
    expect(dirSyncs).toHaveLength(dirs.size);
    expect(dirs.size).toBeLessThan(renames.length);
  });
});
