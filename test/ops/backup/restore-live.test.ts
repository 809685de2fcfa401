import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { Config } from '../../../src/config/resolve-config.js';
import { openObjectStore } from '../../../src/objects/open-object-store.js';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { getMaintenance } from '../../../src/ops/maintenance.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, tempDir } from '../../helpers/backends.js';
import { queueClients } from '../../helpers/queue.js';
import { call, startTestServer } from '../../helpers/server.js';

describeEachBackend('restoring under a running server', (backend) => {
  const dir = tempDir();

  /** A running server whose database holds one network named `name`, and a backup of it. */
  async function servedAndBackedUp(name: string) {
    const server = await startTestServer(backend, dir);
    const { user } = await queueClients(server);
    const submit = (network: string) =>
      user.submitNetwork({
        scope: 'org-camp-p',
        name: network,
        transformations: [{ name: 't', protocol: 'echo', inputs: {} }],
      });
    await submit(name);
    const config: Config = { ...server.config, databaseUrl: server.databaseUrl! };
    const targetDir = path.join(dir, `${name}-${backend}`);
    const target = openObjectStore(`file:${targetDir}`);
    const { manifest } = await createBackup({ config, target, encryption: { mode: 'none' } });
    return { server, user, submit, config, targetDir, target, manifest };
  }

  it('holds the server in maintenance during the restore, and says when it must be restarted', async () => {
    const { server, user, submit, config, target, manifest } = await servedAndBackedUp('before');
    await submit('after');

    const seen: number[] = [];
    let restoring = true;
    const watcher = (async () => {
      while (restoring) {
        seen.push((await call(server.url, undefined, 'GET', '/readyz')).status);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const result = await restoreBackup({
      target,
      backup: manifest.id,
      config,
      keys: { identities: [], passphrases: [] },
      force: true,
      safetyBackupEncryption: { mode: 'none' },
    });
    restoring = false;
    await watcher;
    expect(result.safetyBackupId).toBeDefined();
    // The server noticed maintenance while the restore ran.
    expect(seen).toContain(503);

    const restored = await openStore(config);
    try {
      expect((await getMaintenance(restored)).on).toBe(false);
      const names = await restored.db.selectFrom('networks').select('name').execute();
      expect(names.map((n) => n.name)).toEqual(['before']);
    } finally {
      await restored.close();
    }
    const ready = await call(server.url, undefined, 'GET', '/readyz');
    if (backend === 'sqlite') {
      // It still reads the file the restore replaced: not ready, and it says why.
      expect(ready.status).toBe(503);
      expect(ready.text).toContain('restart the server');
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect((await call(server.url, undefined, 'GET', '/readyz')).status).toBe(200);
      expect((await user.listNetworks()).map((n) => n.name)).toEqual(['before']);
    }
  });

  it('a forced restore that fails before replacing the database ends the maintenance it began', async () => {
    const { server, user, config, targetDir, target, manifest } = await servedAndBackedUp('kept');
    const chunk = manifest.tables.find((t) => t.name === 'networks')!.chunks[0]!;
    const file = path.join(targetDir, manifest.id, ...chunk.split('/'));
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    writeFileSync(file, bytes);

    await expect(
      restoreBackup({
        target,
        backup: manifest.id,
        config,
        keys: { identities: [], passphrases: [] },
        force: true,
        safetyBackupEncryption: { mode: 'none' },
      }),
    ).rejects.toMatchObject({ code: 'backup_corrupt' });
    expect((await getMaintenance(server.store)).on).toBe(false);
    expect((await user.listNetworks()).map((n) => n.name)).toEqual(['kept']);
  });
});
