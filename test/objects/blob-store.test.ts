import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { blobKey, getBlob, hasBlob, putBlob } from '../../src/objects/blob-store.js';
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
