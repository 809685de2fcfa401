import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { S3ObjectStore } from '../../src/objects/s3-object-store.js';
import type { S3Peer } from '../helpers/s3-peer.js';
import { startS3Peer } from '../helpers/s3-peer.js';
import { collect } from './object-stores.js';

describe('s3:// object store', () => {
  let peer: S3Peer;
  let plainPeer: S3Peer;
  beforeAll(async () => {
    [peer, plainPeer] = await Promise.all([startS3Peer(), startS3Peer({ conditionalWrites: false })]);
  });
  afterAll(async () => {
    await Promise.all([peer?.stop(), plainPeer?.stop()]);
  });

  it('pages through long listings', async () => {
    const store = new S3ObjectStore(peer.freshUrl(), { env: peer.env, listPageSize: 3 });
    const keys = Array.from({ length: 11 }, (_, i) => `runs/${String(i).padStart(2, '0')}`);
    await Promise.all(keys.map((key) => store.put(key, Buffer.from(key))));
    await store.put('other', Buffer.from('other'));
    expect((await collect(store.list('runs/'))).map((info) => info.key)).toEqual(keys);
    expect(await collect(store.list(''))).toHaveLength(12);
  });

  it('keeps its objects under the URL prefix', async () => {
    const url = peer.freshUrl();
    const store = openObjectStore(`${url}/nested/`, { env: peer.env });
    await store.put('blobs/x', Buffer.from('x'));
    const bucket = openObjectStore(`s3://${peer.bucket}`, { env: peer.env });
    const prefix = url.slice(`s3://${peer.bucket}/`.length);
    expect((await collect(bucket.list(`${prefix}/`))).map((info) => info.key)).toEqual([
      `${prefix}/nested/blobs/x`,
    ]);
    expect((await collect(store.list(''))).map((info) => info.key)).toEqual(['blobs/x']);
  });

  it('refuses leases on a peer that ignores conditional writes', async () => {
    const store = openObjectStore(plainPeer.freshUrl(), { env: plainPeer.env });
    const attempt = store.putIfAbsent('leases/backup', Buffer.from('me'));
    await expect(attempt).rejects.toMatchObject({
      code: 'invalid_config',
      message: expect.stringContaining('ignores conditional writes (PUT with If-None-Match: *)'),
    });
    expect(await collect(store.list(''))).toEqual([]);
  });

  it('names a missing bucket', async () => {
    const store = openObjectStore('s3://no-such-bucket/x', { env: peer.env });
    await expect(store.put('a', Buffer.from('a'))).rejects.toMatchObject({
      code: 'invalid_config',
      message: expect.stringContaining("bucket 'no-such-bucket' does not exist"),
    });
  });

  it('reports refused credentials without repeating the secret', async () => {
    // s3rver checks the access key id but not SigV4 signatures, so the key id must be the wrong part.
    const env = { ...peer.env, AWS_ACCESS_KEY_ID: 'UNKNOWNKEY', AWS_SECRET_ACCESS_KEY: 'wrong-secret-value' };
    const store = openObjectStore(peer.freshUrl(), { env });
    const error = await store.head('a').catch((caught: unknown) => caught);
    expect(error).toMatchObject({
      code: 'invalid_config',
      message: expect.stringContaining('access refused'),
    });
    const everything = inspect(error, { depth: 10 });
    expect(everything).not.toContain('wrong-secret-value');
    expect(everything).not.toContain('Signature=');
  });

  it('names the endpoint it cannot reach, as an outage (503) a caller may retry through', async () => {
    const env = { ...peer.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' };
    const store = openObjectStore(peer.freshUrl(), { env });
    await expect(store.head('a')).rejects.toMatchObject({
      code: 'objects_unavailable',
      message: expect.stringMatching(/on 127\.0\.0\.1:9: .*check AWS_ENDPOINT_URL/),
    });
  });
});
