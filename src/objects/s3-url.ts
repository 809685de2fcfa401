import { AthanorError } from '../domain/errors.js';
import { assertObjectKey } from './object-key.js';

/** `s3://bucket/prefix` → its parts; refuses credentials in the URL without echoing them. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]*)\/?(.*)$/.exec(url);
  const bucket = match?.[1] ?? '';
  if (bucket.includes('@') || bucket.includes(':')) {
    throw new AthanorError(
      'invalid_config',
      'the object store URL must not hold credentials: use s3://bucket/prefix and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile)',
    );
  }
  if (!match || bucket === '') {
    throw new AthanorError(
      'invalid_config',
      `object store URL '${url}' names no bucket: use s3://bucket or s3://bucket/prefix`,
    );
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix !== '') {
    try {
      assertObjectKey(prefix);
    } catch (cause) {
      throw new AthanorError(
        'invalid_config',
        `object store URL '${url}' has an unusable prefix: ${(cause as Error).message}`,
        { cause },
      );
    }
  }
  return { bucket, prefix };
}

/** The store's URL without a trailing slash: `s3://bucket` or `s3://bucket/prefix`. */
export function s3StoreUrl(url: string): string {
  const { bucket, prefix } = parseS3Url(url);
  return prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
}
