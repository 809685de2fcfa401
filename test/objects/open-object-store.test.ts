import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../src/objects/fs-object-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { DeferredS3ObjectStore } from '../../src/objects/deferred-s3-object-store.js';

describe('openObjectStore', () => {
  it('opens file: stores, resolving relative directories against the working directory', () => {
    const relative = openObjectStore('file:./athanor-data/objects');
    expect(relative).toBeInstanceOf(FsObjectStore);
    expect(relative.url).toBe(`file:${path.resolve(process.cwd(), 'athanor-data/objects')}`);
    expect(openObjectStore('file:/srv/athanor/objects').url).toBe('file:/srv/athanor/objects');
    expect(openObjectStore('file:///srv/athanor/my%20objects').url).toBe('file:/srv/athanor/my objects');
  });

  it('opens s3:// stores without contacting the service', () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'secret',
    };
    const store = openObjectStore('s3://bucket/some/prefix/', { env });
    // The AWS SDK loads on the store's first call; presigned downloads stay available.
    expect(store).toBeInstanceOf(DeferredS3ObjectStore);
    expect(typeof store.downloadUrl).toBe('function');
    expect(store.url).toBe('s3://bucket/some/prefix');
    expect(openObjectStore('s3://bucket', { env }).url).toBe('s3://bucket');
  });

  it.each([
    [
      'http://example.org/objects',
      /is not supported: set ATHANOR_OBJECTS_URL to file:<dir> or s3:\/\/bucket\/prefix/,
    ],
    ['objects', /is not supported/],
    ['file:', /names no directory/],
    ['file://otherhost/objects', /is not a local file URL/],
    ['s3://', /names no bucket/],
    ['s3://bucket/a//b', /empty segment/],
  ])('refuses %s', (url, message) => {
    expect(() => openObjectStore(url, { env: {} })).toThrow(message);
    expect(() => openObjectStore(url, { env: {} })).toThrow(
      expect.objectContaining({ code: expect.any(String) }),
    );
  });

  it('refuses credentials in the URL without repeating them', () => {
    for (const url of ['s3://AKIA:hunter2@bucket/prefix', 'https://user:hunter2@example.org/x']) {
      let message = '';
      try {
        openObjectStore(url, { env: {} });
      } catch (error) {
        expect(error).toMatchObject({ code: 'invalid_config' });
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('hunter2');
    }
  });
});
