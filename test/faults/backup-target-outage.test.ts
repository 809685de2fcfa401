import { afterAll, expect, it } from 'vitest';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { listBackups } from '../../src/ops/backup/backup-target.js';
import { tempDir } from '../helpers/backends.js';
import { startS3Peer } from '../helpers/s3-peer.js';
import { freshStore } from '../helpers/store.js';
import { fillAuditLog } from '../ops/backup/fixtures.js';
import { startAthanor } from './processes.js';
import { startTcpProxy } from './tcp-proxy.js';
import { until } from '../helpers/until.js';

it('the S3 target going away during backup create: backup_target_unavailable naming it, no backup listed, the next one good', async () => {
  const peer = await startS3Peer();
  const proxy = await startTcpProxy(Number(new URL(peer.endpoint).port));
  afterAll(async () => {
    await proxy.close();
    await peer.stop();
  });
  const { store, url } = await freshStore('sqlite', tempDir());
  await fillAuditLog(store, 3_000);
  const targetUrl = peer.freshUrl();
  // The test reads the bucket directly; the backup goes through the proxy that is taken away.
  const direct = openObjectStore(targetUrl, { env: { ...process.env, ...peer.env } });
  const env = {
    ...peer.env,
    AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}`,
    ATHANOR_DATABASE_URL: url,
    ATHANOR_BACKUP_TARGET: targetUrl,
  };
  const backup = () => startAthanor(['backup', 'create', '--chunk-size', '4096', '--json'], env);

  const cut = backup();
  await until(
    'the backup to have written table chunks',
    async () => {
      for await (const object of direct.list('')) if (object.key.includes('/tables/')) return true;
      return false;
    },
    60_000,
  );
  await proxy.down();
  const code = await cut.exited;
  // It ends at once with exit code 1 and the registry's error, naming the target and what to check.
  expect(code, cut.log()).toBe(1);
  const failure = JSON.parse(cut.log().slice(cut.log().indexOf('{"error"'))) as {
    error: { code: string; message: string };
  };
  expect(failure.error.code).toBe('backup_target_unavailable');
  expect(failure.error.message).toContain('nothing was published');
  expect(failure.error.message).toContain(targetUrl);
  expect(failure.error.message).toContain('check AWS_ENDPOINT_URL');
  expect(cut.log()).not.toMatch(/at .*\.js:\d+/);
  await proxy.up();
  // What was written before the cut has no manifest: it is not a backup, and nothing lists it.
  expect(await listBackups(direct)).toEqual([]);

  // Once the target is back, the next backup is complete and verifies.
  const next = backup();
  expect(await next.exited, next.log()).toBe(0);
  const { id } = JSON.parse(next.log().slice(next.log().indexOf('{'))) as { id: string };
  expect((await listBackups(direct)).map((b) => b.id)).toEqual([id]);
  const verify = startAthanor(['backup', 'verify', id, '--json'], env);
  expect(await verify.exited, verify.log()).toBe(0);
  expect(verify.log()).toContain('"ok": true');
});
