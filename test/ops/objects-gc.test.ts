import { existsSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { blobKey, putBlob } from '../../src/objects/blob-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { configDefaults } from '../../src/config/resolve-config.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const maxInlineResultBytes = configDefaults.inlineResultMaxBytes;

const twoDaysAgo = () => new Date(Date.now() - 2 * 24 * 3600 * 1000);

describeEachBackend('athanor objects gc', (backend) => {
  const dir = tempDir();

  it('removes old unreferenced blobs and partial uploads, keeps referenced and young ones', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('gc-test');
    const [claim, inlineClaim] = await compute.claim(id, { count: 2 });
    // Too large to be stored in its row: a blob the result references.
    const keptBytes = Buffer.alloc(maxInlineResultBytes + 1, 'k');
    const { sha256: kept } = await compute.submitResult(claim!.task, claim!.leaseToken, 'ok', keptBytes);
    // A small result is stored in its row: a blob of the same bytes (an older copy) is not referenced.
    const inlineBytes = Buffer.from('small enough for its row');
    await compute.submitResult(inlineClaim!.task, inlineClaim!.leaseToken, 'ok', inlineBytes);
    // An attempt's log is a blob its attempt references.
    const { sha256: log } = await compute.uploadLog(
      claim!.task,
      claim!.leaseToken,
      Buffer.from('a log line\n'),
    );

    const objectsDir = server.config.objectsUrl.slice('file:'.length);
    const objects = openObjectStore(server.config.objectsUrl);
    const { sha256: orphan } = await putBlob(objects, Buffer.from('left behind by a lease that ran out'));
    const { sha256: young } = await putBlob(objects, Buffer.from('an upload about to be referenced'));
    const { sha256: inlineCopy } = await putBlob(objects, inlineBytes);
    await objects.put('tmp/partial-upload', Buffer.from('half'));
    const file = (key: string) => path.join(objectsDir, ...key.split('/'));
    for (const key of [
      blobKey(kept),
      blobKey(log),
      blobKey(orphan),
      blobKey(inlineCopy),
      'tmp/partial-upload',
    ]) {
      utimesSync(file(key), twoDaysAgo(), twoDaysAgo());
    }

    const env = { ATHANOR_DATABASE_URL: server.databaseUrl!, ATHANOR_OBJECTS_URL: server.config.objectsUrl };
    const dry = await runCli(['objects', 'gc', '--dry-run', '--json'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      removed: [blobKey(orphan), blobKey(inlineCopy)].sort(),
      partials: ['tmp/partial-upload'],
    });
    expect(existsSync(file(blobKey(orphan)))).toBe(true);
    // Inside a longer point-in-time window, a two-day-old blob may be referenced by a point to restore.
    const windowed = await runCli(['objects', 'gc', '--dry-run', '--json'], {
      env: { ...env, ATHANOR_PITR_WINDOW_HOURS: '72' },
    });
    expect(JSON.parse(windowed.stdout)).toMatchObject({ removed: [], partials: [] });

    const run = await runCli(['objects', 'gc', '--json'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      removed: [blobKey(orphan), blobKey(inlineCopy)].sort(),
      partials: ['tmp/partial-upload'],
    });
    expect(existsSync(file(blobKey(orphan)))).toBe(false);
    expect(existsSync(file('tmp/partial-upload'))).toBe(false);
    expect(existsSync(file(blobKey(young)))).toBe(true);
    expect(existsSync(file(blobKey(log)))).toBe(true);
    const [result] = await user.taskResults(claim!.task);
    const bytes = Buffer.concat(await (await user.downloadResult(result!.id)).toArray());
    expect(bytes.equals(keptBytes)).toBe(true);
    const [inlineResult] = await user.taskResults(inlineClaim!.task);
    const inline = Buffer.concat(await (await user.downloadResult(inlineResult!.id)).toArray());
    expect(inline.equals(inlineBytes)).toBe(true);
    const audit = await server.store.db
      .selectFrom('audit_log')
      .select('action')
      .where('action', '=', 'objects.gc')
      .execute();
    expect(audit).toHaveLength(1);

    const bad = await runCli(['objects', 'gc', '--grace', 'soon'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--grace');
    // Shorter than the hour after which a reused blob is renewed: refused, nothing removed.
    const short = await runCli(['objects', 'gc', '--grace', '30m'], { env });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('at least 2 hours');
    expect(existsSync(file(blobKey(young)))).toBe(true);
  });

  it('writes a reused blob again once it is old, so the collector never takes one about to be referenced', async () => {
    const objects = openObjectStore(`file:${path.join(dir, `refresh-${backend}`)}`);
    const { sha256 } = await putBlob(objects, Buffer.from('same bytes'));
    const file = path.join(dir, `refresh-${backend}`, ...blobKey(sha256).split('/'));
    utimesSync(file, twoDaysAgo(), twoDaysAgo());
    await putBlob(objects, Buffer.from('same bytes'));
    const info = await objects.head(blobKey(sha256));
    expect(Date.now() - Date.parse(info!.modifiedAt)).toBeLessThan(60_000);
  });
});
