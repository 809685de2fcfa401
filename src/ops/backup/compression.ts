import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { AthanorError } from '../../domain/errors.js';

/** How table chunks are compressed; recorded in the manifest. */
export type Compression = 'gzip' | 'zstd';

interface ZstdZlib {
  createZstdCompress?: () => Transform;
  createZstdDecompress?: () => Transform;
}
// Node 22.15+ has zstd in zlib; Node 20 does not, and gets gzip.
const zstd = zlib as unknown as ZstdZlib;

/** zstd where the runtime has it, gzip otherwise. */
export const defaultCompression: Compression =
  typeof zstd.createZstdCompress === 'function' && typeof zstd.createZstdDecompress === 'function'
    ? 'zstd'
    : 'gzip';

export const compressionExtension: Readonly<Record<Compression, string>> = { gzip: 'gz', zstd: 'zst' };

export function createCompressor(kind: Compression): Transform {
  if (kind === 'gzip') return zlib.createGzip({ level: 6 });
  return requireZstd().createZstdCompress();
}

export function createDecompressor(kind: Compression): Transform {
  if (kind === 'gzip') return zlib.createGunzip();
  return requireZstd().createZstdDecompress();
}

function requireZstd(): Required<ZstdZlib> {
  if (!zstd.createZstdCompress || !zstd.createZstdDecompress) {
    throw new AthanorError(
      'backup_incompatible',
      `this backup is zstd-compressed and Node ${process.version} has no zstd: run Athanor on Node 22.15 ` +
        `or newer to read it (or decompress the chunks with the zstd tool)`,
    );
  }
  return zstd as Required<ZstdZlib>;
}
