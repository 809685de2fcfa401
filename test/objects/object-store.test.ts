import { expect, it } from 'vitest';
import { AthanorError } from '../../src/domain/errors.js';
import {
  collect,
  describeEachObjectStore,
  failingBody,
  generatedBody,
  sha256Of,
  textOf,
} from './object-stores.js';

const mebibyte = 1024 * 1024;

describeEachObjectStore('object store', (freshStore) => {
  it('streams a 20 MiB body in and out unchanged', async () => {
    const store = freshStore();
    const body = generatedBody(20 * mebibyte);
    const { sizeBytes } = await store.put('results/big.bin', body.stream);
    expect(sizeBytes).toBe(20 * mebibyte);
    expect(await sha256Of(await store.get('results/big.bin'))).toEqual({
      sha256: body.sha256,
      sizeBytes: 20 * mebibyte,
    });
    expect(await store.head('results/big.bin')).toMatchObject({ key: 'results/big.bin', sizeBytes });
  });

  it('stores buffers, empty objects, and replaces on a second put', async () => {
    const store = freshStore();
    expect(await store.put('a.txt', Buffer.from('first'))).toEqual({ sizeBytes: 5 });
    expect(await store.put('empty', Buffer.alloc(0))).toEqual({ sizeBytes: 0 });
    await store.put('a.txt', Buffer.from('second version'));
    expect(await textOf(await store.get('a.txt'))).toBe('second version');
    expect(await textOf(await store.get('empty'))).toBe('');
    expect((await store.head('empty'))?.sizeBytes).toBe(0);
  });

  it('reports size and modification time, and nothing for an absent key', async () => {
    const store = freshStore();
    const before = Date.now() - 5_000;
    await store.put('dir/file', Buffer.from('12345'));
    const info = await store.head('dir/file');
    expect(info?.sizeBytes).toBe(5);
    const modifiedAt = Date.parse(info?.modifiedAt ?? '');
    expect(modifiedAt).toBeGreaterThan(before);
    expect(modifiedAt).toBeLessThan(Date.now() + 5_000);
    expect(await store.head('dir/missing')).toBeUndefined();
    expect(await store.head('dir')).toBeUndefined();
  });

  it('lists keys in order and by prefix', async () => {
    const store = freshStore();
    for (const key of ['b', 'a/2', 'c/e', 'a/1', 'ab', 'c/d/e']) await store.put(key, Buffer.from(key));
    const keys = async (prefix: string) => (await collect(store.list(prefix))).map((info) => info.key);
    expect(await keys('')).toEqual(['a/1', 'a/2', 'ab', 'b', 'c/d/e', 'c/e']);
    expect(await keys('a/')).toEqual(['a/1', 'a/2']);
    expect(await keys('a')).toEqual(['a/1', 'a/2', 'ab']);
    expect(await keys('c/d')).toEqual(['c/d/e']);
    expect(await keys('zzz')).toEqual([]);
    expect(await keys('nothing/here/')).toEqual([]);
    const [first] = await collect(store.list('c/d/'));
    expect(first).toMatchObject({ key: 'c/d/e', sizeBytes: 5 });
  });

  it('keeps two stores apart', async () => {
    const one = freshStore();
    const two = freshStore();
    await one.put('same/key', Buffer.from('one'));
    expect(await two.head('same/key')).toBeUndefined();
    expect(await collect(two.list(''))).toEqual([]);
  });

  it('deletes, and deleting an absent key is not an error', async () => {
    const store = freshStore();
    await store.put('x/y/z', Buffer.from('z'));
    await store.put('x/keep', Buffer.from('k'));
    await store.delete('x/y/z');
    await store.delete('x/y/z');
    await store.delete('never/was');
    expect(await store.head('x/y/z')).toBeUndefined();
    expect((await collect(store.list(''))).map((info) => info.key)).toEqual(['x/keep']);
  });

  it('refuses to read an absent key with a message naming the key and the store', async () => {
    const store = freshStore();
    const error = await store.get('no/such/object').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AthanorError);
    expect(error).toMatchObject({ code: 'not_found' });
    expect((error as Error).message).toContain("'no/such/object'");
    expect((error as Error).message).toContain(store.url);
  });

  it('moves an object, replacing the target', async () => {
    const store = freshStore();
    await store.put('tmp/one', Buffer.from('payload'));
    await store.put('final/one', Buffer.from('old'));
    await store.move('tmp/one', 'final/one');
    expect(await store.head('tmp/one')).toBeUndefined();
    expect(await textOf(await store.get('final/one'))).toBe('payload');
    await expect(store.move('tmp/one', 'final/two')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('creates a key only once with putIfAbsent', async () => {
    const store = freshStore();
    expect(await store.putIfAbsent('locks/a', Buffer.from('first'))).toBe(true);
    expect(await store.putIfAbsent('locks/a', Buffer.from('second'))).toBe(false);
    expect(await textOf(await store.get('locks/a'))).toBe('first');
    await store.delete('locks/a');
    expect(await store.putIfAbsent('locks/a', Buffer.from('third'))).toBe(true);
  });

  it('lets exactly one of 20 concurrent putIfAbsent calls win', async () => {
    const store = freshStore();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, writer) =>
        store.putIfAbsent('leases/backup', Buffer.from(`writer ${writer}`)),
      ),
    );
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    const winner = outcomes.indexOf(true);
    expect(await textOf(await store.get('leases/backup'))).toBe(`writer ${winner}`);
  });

  it('leaves no object behind when the body stream fails', async () => {
    const store = freshStore();
    const failure = new Error('the producer crashed');
    await expect(store.put('partial/failed', failingBody(10 * mebibyte, failure))).rejects.toBe(failure);
    expect(await store.head('partial/failed')).toBeUndefined();
    expect(await collect(store.list(''))).toEqual([]);
  });

  it('leaves no object behind when the put is aborted', async () => {
    const store = freshStore();
    const controller = new AbortController();
    const body = failingBody(3 * mebibyte);
    setTimeout(() => controller.abort(), 200);
    await expect(store.put('partial/aborted', body, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(body.destroyed).toBe(true);
    expect(await store.head('partial/aborted')).toBeUndefined();
    expect(await collect(store.list(''))).toEqual([]);
  });

  it.each(['', '/leading', 'trailing/', 'a//b', '../escape', 'a/./b', 'a/../b', 'back\\slash', 'nul\0'])(
    'refuses the key %j',
    async (key) => {
      const store = freshStore();
      await expect(store.put(key, Buffer.from('x'))).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(store.head(key)).rejects.toMatchObject({ code: 'invalid_argument' });
    },
  );
});
