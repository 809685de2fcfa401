import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { blobKey, getBlob, getSmallBlob, hasBlob, putBlob } from '../../src/objects/blob-store.js';
import {
  collect,
  describeEachObjectStore,
  failingBody,
  generatedBody,
  sha256Of,
  textOf,
} from './object-stores.js';

const mebibyte = 1024 * 1024;
const helloSha256 = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

describeEachObjectStore('blob store', (freshStore) => {
  it('stores a streamed blob under its SHA-256 and reads it back', async () => {
    const store = freshStore();
    const body = generatedBody(12 * mebibyte);
    const blob = await putBlob(store, body.stream);
    expect(blob).toEqual({ sha256: body.sha256, sizeBytes: 12 * mebibyte });
    expect(await hasBlob(store, body.sha256)).toBe(true);
    expect(await sha256Of(await getBlob(store, body.sha256))).toEqual(blob);
    const keys = (await collect(store.list(''))).map((info) => info.key);
    expect(keys).toEqual([`blobs/sha256/${body.sha256.slice(0, 2)}/${body.sha256}`]);
  });

  it('stores the same content once, from streams and buffers alike', async () => {
    const store = freshStore();
    const first = await putBlob(store, Readable.from([Buffer.from('hel'), Buffer.from('lo')]));
    const second = await putBlob(store, Readable.from([Buffer.from('hello')]));
    const third = await putBlob(store, Buffer.from('hello'));
    expect(first).toEqual({ sha256: helloSha256, sizeBytes: 5 });
    expect(second).toEqual(first);
    expect(third).toEqual(first);
    expect((await collect(store.list(''))).map((info) => info.key)).toEqual([blobKey(helloSha256)]);
    expect(await textOf(await getBlob(store, helloSha256))).toBe('hello');
  });

  it('reads a small blob whole where the store can, checked against its digest', async () => {
    const store = freshStore();
    await putBlob(store, Buffer.from('hello'));
    const bytes = await getSmallBlob(store, helloSha256, 1024);
    if (!store.getSmall) {
      expect(bytes).toBeUndefined();
      return;
    }
    expect(bytes?.toString('utf8')).toBe('hello');
    // Larger than the limit: left to the stream.
    expect(await getSmallBlob(store, helloSha256, 4)).toBeUndefined();
    await expect(getSmallBlob(store, 'a'.repeat(64), 1024)).rejects.toMatchObject({ code: 'not_found' });
    // Bytes that do not hash to their key are refused, as getBlob refuses them.
    await store.put(blobKey(helloSha256), Buffer.from('hellO'));
    await expect(getSmallBlob(store, helloSha256, 1024)).rejects.toThrow(/is damaged/);
  });

  it('stores concurrent uploads of the same content as one blob', async () => {
    const store = freshStore();
    const bodies = Array.from({ length: 4 }, () => generatedBody(2 * mebibyte, 7));
    const blobs = await Promise.all(bodies.map((body) => putBlob(store, body.stream)));
    expect(new Set(blobs.map((blob) => blob.sha256))).toEqual(new Set([bodies[0]?.sha256]));
    expect(await collect(store.list(''))).toHaveLength(1);
  });

  it('leaves neither blob nor temporary object when the stream fails', async () => {
    const store = freshStore();
    const failure = new Error('the task died mid-upload');
    await expect(putBlob(store, failingBody(2 * mebibyte, failure))).rejects.toBe(failure);
    expect(await collect(store.list(''))).toEqual([]);
  });

  it('refuses anything but 64 lowercase hex characters as a digest', async () => {
    const store = freshStore();
    for (const bad of [
      '',
      'abc',
      helloSha256.toUpperCase(),
      `${helloSha256}0`,
      '../../etc/passwd',
      `../${helloSha256.slice(3)}`,
    ]) {
      expect(() => blobKey(bad)).toThrow(/is not a SHA-256 digest/);
      await expect(getBlob(store, bad)).rejects.toMatchObject({ code: 'invalid_argument' });
      await expect(hasBlob(store, bad)).rejects.toMatchObject({ code: 'invalid_argument' });
    }
  });

  it('names the missing blob', async () => {
    const store = freshStore();
    expect(await hasBlob(store, helloSha256)).toBe(false);
    await expect(getBlob(store, helloSha256)).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringContaining(`blob ${helloSha256} not found at ${store.url}`),
    });
  });

  it('fails the read of a damaged blob instead of returning wrong bytes', async () => {
    const store = freshStore();
    await store.put(blobKey(helloSha256), Buffer.from('jello'));
    await expect(textOf(await getBlob(store, helloSha256))).rejects.toThrow(/is damaged/);
  });
});
