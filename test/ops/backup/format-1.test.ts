import { cpSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { getBlob } from '../../../src/objects/blob-store.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { readManifest } from '../../../src/ops/backup/backup-target.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { pruneBackups } from '../../../src/ops/backup/prune-backups.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../../src/ops/backup/verify-backup.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir, testConfig } from '../../helpers/backends.js';

const noKeys = { identities: [], passphrases: [] };
const text = async (stream: Readable) => Buffer.concat(await stream.toArray()).toString('utf8');
/** A backup written by the release before packs: format 1, one file per result blob, SQLite rows. */
const fixture = path.join(import.meta.dirname, 'format-1-target');
const fixtureId = '20261207T233836Z-63a46d';
const results = ['format one, first', 'format one, second', 'L'.repeat(300 * 1024)];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

describeEachBackend('a format 1 backup', (backend) => {
  const dir = tempDir();

  it('still verifies, restores with its blobs, migrates forward, and keeps its blobs through prune', async () => {
    const targetDir = path.join(dir, `format-1-${backend}`);
    cpSync(fixture, targetDir, { recursive: true });
    const target = openObjectStore(`file:${targetDir}`);
    const old = await readManifest(target, fixtureId);
    expect(old.formatVersion).toBe(1);
    expect(old.blobs).toHaveLength(3);
    expect(await verifyBackup({ target, backup: fixtureId, mode: 'full', keys: noKeys })).toMatchObject({
      ok: true,
      problems: [],
    });

    const config = {
      ...testConfig(await freshDatabaseUrl(backend, dir), dir),
      objectsUrl: `file:${path.join(dir, `objects-format-1-${backend}`)}`,
    };
    const restored = await restoreBackup({ target, backup: fixtureId, config, keys: noKeys });
    expect(restored).toMatchObject({
      backupId: fixtureId,
      rows: old.totals.rows,
      blobs: { copied: 3, present: 0 },
    });
    const objects = openObjectStore(config.objectsUrl);
    const store = await openStore(config);
    try {
      const { rows } = await sql<{ sha: string }>`
        select blob_sha256 as sha from results order by size_bytes`.execute(store.db);
      expect(rows).toHaveLength(3);
      const bodies = await Promise.all(rows.map(async (r) => text(await getBlob(objects, r.sha))));
      expect([...bodies].sort()).toEqual([...results].sort());
    } finally {
      await store.close();
    }

    // A format 2 backup beside it packs the blobs; prune keeps the old one's files while it is kept,
    // and removes them with it.
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    expect(manifest.formatVersion).toBe(2);
    expect(manifest.blobCount).toBe(3);
    const kept = await pruneBackups({ target, policy: { keepLast: 2 } });
    expect(kept.remove).toEqual([]);
    expect(filesUnder(targetDir).filter((f) => f.startsWith('blobs/'))).toHaveLength(3);
    // Prune keeps the newest fully verified backup: that is the new one once it has been verified.
    expect(await verifyBackup({ target, backup: manifest.id, mode: 'full', keys: noKeys })).toMatchObject({
      ok: true,
    });
    const pruned = await pruneBackups({ target, policy: { keepLast: 1 } });
    expect(pruned.remove).toEqual([fixtureId]);
    expect(filesUnder(targetDir).filter((f) => f.startsWith('blobs/'))).toEqual([]);
  });
});
