import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { FsObjectStore } from '../../../src/objects/fs-object-store.js';
import { buildApp } from '../../../src/server/app.js';
import { openStore } from '../../../src/store/open-store.js';
import { getSetting } from '../../../src/store/queries/settings.js';
import { describeEachBackend, freshDatabaseUrl, tempDir, testConfig } from '../../helpers/backends.js';
import { call, startTestServer } from '../../helpers/server.js';
import { configFor } from './fixtures.js';

const none = { mode: 'none' } as const;
const noKeys = { identities: [], passphrases: [] };

/** Every file and directory below `root`, with its permission bits. */
function modes(root: string): { file: string; dir: boolean; mode: number }[] {
  const found: { file: string; dir: boolean; mode: number }[] = [];
  for (const entry of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
    const stats = statSync(path.join(root, entry));
    found.push({ file: entry, dir: stats.isDirectory(), mode: stats.mode & 0o777 });
  }
  return found;
}

describeEachBackend('backups and the token signing secret', (backend) => {
  const dir = tempDir();

  it('leave the stored secret out, so tokens issued before a restore stop working; files are 0600', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'carol', ['a-b-c']);
    const token = await server.token('user', 'carol', key);
    const secret = await getSetting(server.store.db, 'jwt_secret');
    expect(secret).toEqual(expect.any(String));

    const targetDir = path.join(dir, `target-${backend}`);
    const target = new FsObjectStore(targetDir);
    await createBackup({ config: configFor(server.databaseUrl!, dir), target, encryption: none });
    const files = modes(targetDir);
    expect(files.length).toBeGreaterThan(3);
    for (const entry of files) expect(entry).toEqual({ ...entry, mode: entry.dir ? 0o700 : 0o600 });

    const intoUrl = await freshDatabaseUrl(backend, dir);
    await restoreBackup({ target, backup: 'latest', config: configFor(intoUrl, dir), keys: noKeys });
    const restored = await openStore({ ...testConfig(intoUrl, dir) });
    try {
      expect(await getSetting(restored.db, 'jwt_secret')).toBeUndefined();
      const app = await buildApp({ store: restored, config: testConfig(intoUrl, dir), logger: false });
      try {
        const asCarol = (t: string) =>
          app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${t}` } });
        expect((await asCarol(token)).statusCode).toBe(401);
        const fresh = await app.inject({
          method: 'POST',
          url: '/v1/token',
          payload: { username: 'carol', password: key },
        });
        expect(fresh.statusCode).toBe(200);
        expect((await asCarol(fresh.json<{ access_token: string }>().access_token)).statusCode).toBe(200);
        expect(await getSetting(restored.db, 'jwt_secret')).not.toBe(secret);
      } finally {
        await app.close();
      }
    } finally {
      await restored.close();
    }
    // The original installation is untouched.
    expect((await call(server.url, token, 'GET', '/v1/whoami')).status).toBe(200);
  });
});
