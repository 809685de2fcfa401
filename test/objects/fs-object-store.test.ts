import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../src/objects/fs-object-store.js';
import { tempDir } from '../helpers/backends.js';
import { collect, failingBody, textOf } from './object-stores.js';

const mebibyte = 1024 * 1024;
const execFileAsync = promisify(execFile);

describe('file: object store', () => {
  const root = tempDir('athanor-fs-objects-');
  let count = 0;
  const fresh = () => {
    const dir = path.join(root, `store-${count++}`);
    return { dir, store: new FsObjectStore(dir) };
  };

  it('lists in S3 byte order, where a-c comes before a/b', async () => {
    const { store } = fresh();
    const keys = ['a/b', 'a-c', 'a', 'a.d/e', 'é', 'z', 'A'];
    for (const key of keys.filter((key) => key !== 'a')) await store.put(key, Buffer.from(key));
    const listed = (await collect(store.list(''))).map((info) => info.key);
    expect(listed).toEqual(['A', 'a-c', 'a.d/e', 'a/b', 'z', 'é']);
  });

  it('keeps partial writes out of sight and cleans them up', async () => {
    const { dir, store } = fresh();
    await store.put('kept', Buffer.from('kept'));
    const failure = new Error('boom');
    await expect(store.put('lost', failingBody(3 * mebibyte, failure))).rejects.toBe(failure);
    expect(readdirSync(path.join(dir, '.athanor-tmp'))).toEqual([]);
    writeFileSync(path.join(dir, '.athanor-tmp', 'stray'), 'half a write');
    expect((await collect(store.list(''))).map((info) => info.key)).toEqual(['kept']);
    await expect(store.put('.athanor-tmp/x', Buffer.from('x'))).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('partial writes'),
    });
  });

  it('removes directories a delete or move leaves empty', async () => {
    const { dir, store } = fresh();
    await store.put('backups/one/tables/a.ndjson.gz', Buffer.from('a'));
    await store.put('backups/two/manifest.json', Buffer.from('{}'));
    await store.delete('backups/one/tables/a.ndjson.gz');
    expect(existsSync(path.join(dir, 'backups/one'))).toBe(false);
    await store.move('backups/two/manifest.json', 'archive/manifest.json');
    expect(existsSync(path.join(dir, 'backups'))).toBe(false);
    expect(await textOf(await store.get('archive/manifest.json'))).toBe('{}');
  });

  it('explains why a key cannot be both an object and a prefix', async () => {
    const { store } = fresh();
    await store.put('a', Buffer.from('a'));
    await expect(store.put('a/b', Buffer.from('b'))).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('cannot hold both an object and other objects under it'),
    });
    await store.put('c/d', Buffer.from('d'));
    await expect(store.put('c', Buffer.from('c'))).rejects.toMatchObject({ code: 'invalid_argument' });
    expect(await store.head('c')).toBeUndefined();
    await expect(store.get('c')).rejects.toMatchObject({ code: 'not_found' });
    await store.delete('c');
    expect(await textOf(await store.get('c/d'))).toBe('d');
  });

  it('lets exactly one of several processes take a key', async () => {
    const { dir } = fresh();
    // The built module, as `athanor` runs it; the global setup rebuilt dist/ when src/ changed.
    const moduleUrl = pathToFileURL(
      path.resolve(import.meta.dirname, '../../dist/objects/fs-object-store.js'),
    );
    const startAt = Date.now() + 1_500;
    const script = `
      import { FsObjectStore } from ${JSON.stringify(moduleUrl.href)};
      const store = new FsObjectStore(process.argv[1]);
      await new Promise((resolve) => setTimeout(resolve, ${startAt} - Date.now()));
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, (_, i) => store.putIfAbsent('lease', Buffer.from(process.pid + '/' + i))),
      );
      process.stdout.write(JSON.stringify(outcomes));
    `;
    const runs = await Promise.all(
      Array.from({ length: 6 }, () =>
        execFileAsync(process.execPath, ['--input-type=module', '-e', script, dir], { encoding: 'utf8' }),
      ),
    );
    const outcomes = runs.flatMap((run) => JSON.parse(run.stdout) as boolean[]);
    expect(outcomes).toHaveLength(30);
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    expect(readdirSync(path.join(dir, '.athanor-tmp'))).toEqual([]);
  });
});
