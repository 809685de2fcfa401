import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe } from 'vitest';
import { FsObjectStore } from '../../src/objects/fs-object-store.js';
import type { ObjectStore } from '../../src/objects/object-store.js';
import { openObjectStore } from '../../src/objects/open-object-store.js';
import { tempDir } from '../helpers/backends.js';
import type { S3Peer } from '../helpers/s3-peer.js';
import { startS3Peer } from '../helpers/s3-peer.js';

export type ObjectStoreKind = 'file' | 's3';

/** Gives each test a store of its own: a fresh directory, or a fresh prefix in the peer's bucket. */
export type FreshStore = () => ObjectStore;

/**
 * Declares the suite once per object store: `file:` in a temp directory and `s3://` against an
 * s3rver peer that the suite starts itself.
 */
export function describeEachObjectStore(
  name: string,
  body: (freshStore: FreshStore, kind: ObjectStoreKind) => void,
): void {
  describe(`${name} [file]`, () => {
    const dir = tempDir('athanor-objects-');
    let count = 0;
    body(() => new FsObjectStore(path.join(dir, `store-${count++}`)), 'file');
  });
  describe(`${name} [s3]`, () => {
    let peer: S3Peer | undefined;
    beforeAll(async () => {
      peer = await startS3Peer();
    });
    afterAll(async () => {
      await peer?.stop();
    });
    body(() => {
      if (!peer) throw new Error('the S3 peer did not start');
      return openObjectStore(peer.freshUrl(), { env: peer.env });
    }, 's3');
  });
}

const mebibyte = 1024 * 1024;
const seed = randomBytes(mebibyte);

/** Deterministic bytes, one MiB-sized chunk at a time, never held whole. */
function* chunksOf(sizeBytes: number, salt: number): Generator<Buffer> {
  for (let offset = 0, index = 0; offset < sizeBytes; offset += mebibyte, index++) {
    const chunk = Buffer.from(seed.subarray(0, Math.min(mebibyte, sizeBytes - offset)));
    if (chunk.length >= 8) {
      chunk.writeUInt32BE(index, 0);
      chunk.writeUInt32BE(salt, 4);
    }
    yield chunk;
  }
}

/** A generated body of `sizeBytes`, and its SHA-256. `salt` varies the content. */
export function generatedBody(sizeBytes: number, salt = 0): { stream: Readable; sha256: string } {
  const hash = createHash('sha256');
  for (const chunk of chunksOf(sizeBytes, salt)) hash.update(chunk);
  return { stream: Readable.from(chunksOf(sizeBytes, salt)), sha256: hash.digest('hex') };
}

/** A body that yields `goodBytes`, then fails with `error` (or waits forever when none is given). */
export function failingBody(goodBytes: number, error?: Error): Readable {
  return Readable.from(
    (async function* () {
      yield* chunksOf(goodBytes, 99);
      if (error) throw error;
      await new Promise(() => {});
    })(),
  );
}

export async function sha256Of(
  stream: AsyncIterable<unknown>,
): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    sizeBytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}

export async function textOf(stream: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
