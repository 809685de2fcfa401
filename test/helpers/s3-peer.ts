import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** An S3 protocol peer (s3rver) on loopback, with one empty bucket. */
export interface S3Peer {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly bucket: string;
  /** The `AWS_*` settings a client needs to reach the peer. */
  readonly env: {
    readonly AWS_ENDPOINT_URL: string;
    readonly AWS_REGION: string;
    readonly AWS_ACCESS_KEY_ID: string;
    readonly AWS_SECRET_ACCESS_KEY: string;
  };
  /** `s3://<bucket>/<random prefix>`: a store no other test shares. */
  freshUrl(): string;
  stop(): Promise<void>;
}

export interface S3PeerOptions {
  /**
   * Whether PUT honours `If-None-Match: *` as AWS S3 does; default true. s3rver 3.7 ignores the
   * header, so the peer adds it; false gives a peer that lacks it, like s3rver itself.
   */
  readonly conditionalWrites?: boolean;
}

/*
 * s3rver runs in a child process, not in the test worker, for two reasons: it signs
 * ListObjectsV2 continuation tokens with DES, which OpenSSL 3 offers only with
 * --openssl-legacy-provider (without it every truncated listing answers 500); and it installs
 * process-wide exception handlers through its logger.
 *
 * s3rver writes an object in place, in several steps, so two concurrent writes to one key fail
 * (CopyObject answers 500) or mix; S3 makes each write atomic. The child serializes the writes to
 * each key (PUT, copy, CompleteMultipartUpload, DELETE). It also adds conditional PUT, which
 * s3rver ignores: a write carrying `If-None-Match: *` is answered 412 PreconditionFailed when the
 * key exists, checked inside the key's turn, as AWS S3 does.
 */
const peerScript = String.raw`
const [s3rverPath, directory, bucket, conditionalWrites] = process.argv.slice(1);
const S3rver = require(s3rverPath);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const tails = new Map();
async function inTurn(id, work) {
  const previous = tails.get(id) || Promise.resolve();
  let release;
  const turn = new Promise((resolve) => (release = resolve));
  const tail = previous.then(() => turn);
  tails.set(id, tail);
  await previous;
  try {
    return await work();
  } finally {
    release();
    if (tails.get(id) === tail) tails.delete(id);
  }
}
async function atomicWrites(ctx, next) {
  const [, bucketName, ...rest] = ctx.path.split('/');
  const isWrite = rest.length > 0 && (
    (ctx.method === 'PUT' && !('partNumber' in ctx.query)) ||
    (ctx.method === 'POST' && 'uploadId' in ctx.query) ||
    (ctx.method === 'DELETE' && !('uploadId' in ctx.query)));
  if (!isWrite) return next();
  const key = rest.map(decodeURIComponent).join('/');
  const conditional = conditionalWrites === 'true' && ctx.method !== 'DELETE' &&
    ctx.get('if-none-match') === '*';
  return inTurn(bucketName + '/' + key, async () => {
    if (conditional && (await server.store.existsObject(bucketName, key))) {
      ctx.status = 412;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
        '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
        '<Condition>If-None-Match</Condition></Error>';
      return;
    }
    await next();
  });
}
server.middleware.unshift(atomicWrites);
server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\n'),
  (error) => {
    process.stderr.write(String(error && error.stack || error) + '\n');
    process.exit(1);
  },
);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/** Starts s3rver on a free loopback port with a temporary directory and one bucket. */
export async function startS3Peer(options: S3PeerOptions = {}): Promise<S3Peer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-s3-'));
  const bucket = 'athanor-test';
  const s3rverPath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      '-e',
      peerScript,
      s3rverPath,
      dir,
      bucket,
      String(options.conditionalWrites ?? true),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('s3rver did not start within 30 s')), 30_000);
      createInterface({ input: child.stdout }).once('line', (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited with code ${code} before it listened: ${stderr.trim()}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    },
    freshUrl: () => `s3://${bucket}/t-${randomBytes(6).toString('hex')}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
