import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ObjectStore } from '../../../src/objects/object-store.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { listBackups } from '../../../src/ops/backup/backup-target.js';
import type { ScheduledRunResult } from '../../../src/ops/schedule/backup-scheduler.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import type { S3Peer } from '../../helpers/s3-peer.js';
import { startS3Peer } from '../../helpers/s3-peer.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, freshTarget, populate } from '../backup/fixtures.js';
import { watchedScheduler } from './scheduler-fixtures.js';
import { until } from '../../helpers/until.js';

let peer: S3Peer;
beforeAll(async () => {
  peer = await startS3Peer();
});
afterAll(async () => {
  await peer?.stop();
});

describeEachBackend('backup scheduler replicas', (backend) => {
  const dir = tempDir();

  /**
   * Runs two schedulers on one database and one target until four slots produced a backup, and
   * checks each slot ran once. Each replica has its own connections and its own handle on the
   * target, as separate processes do.
   */
  async function twoReplicas(openTarget: () => ObjectStore): Promise<void> {
    const { store, url } = await freshStore(backend, dir);
    await populate(store, { rows: 10 });
    const config = configFor(url, dir);
    const shared = openTarget();
    const otherStore = await openStore(config);
    const replicas = [
      watchedScheduler({ store, config, target: shared, schedule: '* * * * * *' }),
      watchedScheduler({
        store: otherStore,
        config,
        target: openTarget(),
        schedule: '* * * * * *',
        actor: 'replica-b',
      }),
    ];
    const all = (): ScheduledRunResult[] => replicas.flatMap((r) => r.results);
    try {
      await until('four slots run', () => all().filter((r) => r.outcome === 'ok').length >= 4, 30_000, 5);
    } finally {
      await Promise.all(replicas.map((r) => r.scheduler.stop()));
      await otherStore.close();
    }
    const bySlot = new Map<string, ScheduledRunResult[]>();
    for (const result of all()) {
      bySlot.set(result.slot ?? '', [...(bySlot.get(result.slot ?? '') ?? []), result]);
    }
    for (const [slot, results] of bySlot) {
      expect(
        results.filter((r) => r.outcome !== 'not_leader'),
        `slot ${slot}`,
      ).toHaveLength(1);
    }
    // Both replicas reached the same slots: the one that lost each claim stood by.
    expect(all().some((r) => r.outcome === 'not_leader')).toBe(true);
    const backups = await listBackups(shared);
    const led = all().filter((r) => r.outcome === 'ok');
    expect(backups.map((b) => b.id).sort()).toEqual(led.map((r) => r.backupId).sort());
    const reasons = backups.map((b) => b.manifest?.reason);
    expect(new Set(reasons).size).toBe(backups.length);
    expect(reasons.sort()).toEqual(led.map((r) => `scheduled ${r.slot}`).sort());
  }

  it('two schedulers sharing one database and a file: target run exactly one backup per slot', async () => {
    const first = freshTarget(dir);
    await twoReplicas(() => openObjectStore(first.url));
  });

  it('two schedulers sharing one database and an s3:// target run exactly one backup per slot', async () => {
    const url = peer.freshUrl();
    await twoReplicas(() => openObjectStore(url, { env: s3Env() }));
  });
});

function s3Env(): NodeJS.ProcessEnv {
  return { ...process.env, ...peer.env };
}
