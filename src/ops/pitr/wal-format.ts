import os from 'node:os';

/**
 * SQLite's write-ahead log file format (https://www.sqlite.org/fileformat2.html#walformat): a
 * 32-byte header, then frames of a 24-byte header and one page. A frame belongs to the log while
 * its salts match the header's and its cumulative checksum holds; a frame whose "database size
 * after commit" is not zero ends a transaction.
 */

export const walHeaderBytes = 32;
export const walFrameHeaderBytes = 24;
const magicLittleEndian = 0x377f0682;
const magicBigEndian = 0x377f0683;

export interface WalHeader {
  readonly bigEndianChecksums: boolean;
  readonly pageSize: number;
  readonly checkpointSequence: number;
  readonly salt1: number;
  readonly salt2: number;
  /** The checksum the first frame's continues from. */
  readonly checksum: readonly [number, number];
}

/** The running checksum over `data` (a multiple of 8 bytes), continuing from `start`. */
export function walChecksum(
  data: Buffer,
  bigEndian: boolean,
  start: readonly [number, number],
): [number, number] {
  let s0 = start[0];
  let s1 = start[1];
  const words = data.length >>> 2;
  if (!bigEndian && os.endianness() === 'LE' && data.byteOffset % 4 === 0) {
    // The log's own byte order (SQLite writes it native): the words read as they lie in memory.
    const view = new Uint32Array(data.buffer, data.byteOffset, words);
    for (let i = 0; i + 1 < words; i += 2) {
      s0 = (s0 + (view[i] as number) + s1) >>> 0;
      s1 = (s1 + (view[i + 1] as number) + s0) >>> 0;
    }
    return [s0, s1];
  }
  for (let i = 0; i + 8 <= data.length; i += 8) {
    const x0 = bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i);
    const x1 = bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

/** The header of a WAL file, or undefined when `bytes` holds none (an empty or reset log). */
export function parseWalHeader(bytes: Buffer): WalHeader | undefined {
  if (bytes.length < walHeaderBytes) return undefined;
  const magic = bytes.readUInt32BE(0);
  if (magic !== magicLittleEndian && magic !== magicBigEndian) return undefined;
  const bigEndianChecksums = magic === magicBigEndian;
  const checksum = walChecksum(bytes.subarray(0, 24), bigEndianChecksums, [0, 0]);
  if (checksum[0] !== bytes.readUInt32BE(24) || checksum[1] !== bytes.readUInt32BE(28)) return undefined;
  return {
    bigEndianChecksums,
    pageSize: bytes.readUInt32BE(8) === 1 ? 65536 : bytes.readUInt32BE(8),
    checkpointSequence: bytes.readUInt32BE(12),
    salt1: bytes.readUInt32BE(16),
    salt2: bytes.readUInt32BE(20),
    checksum,
  };
}

/** Committed frames read from a log: whole transactions only. */
export interface CommittedFrames {
  /** The frames, header and page each, as they are in the log. */
  readonly bytes: Buffer;
  readonly frameCount: number;
  readonly commitCount: number;
  /** The checksum after the last committed frame, where the next read continues. */
  readonly checksum: readonly [number, number];
}

/**
 * The whole transactions in `frames` (bytes of the log from a frame boundary on), checking each
 * frame's salts and cumulative checksum from `checksum`. Frames of a transaction not yet
 * committed, and anything after the first frame that fails its check, are left out.
 */
export function committedFrames(
  header: WalHeader,
  frames: Buffer,
  checksum: readonly [number, number],
): CommittedFrames {
  const frameBytes = walFrameHeaderBytes + header.pageSize;
  let running: readonly [number, number] = checksum;
  let committedEnd = 0;
  let committedChecksum = checksum;
  let frameCount = 0;
  let committedFrameCount = 0;
  let commitCount = 0;
  for (let offset = 0; offset + frameBytes <= frames.length; offset += frameBytes) {
    const frame = frames.subarray(offset, offset + frameBytes);
    if (frame.readUInt32BE(8) !== header.salt1 || frame.readUInt32BE(12) !== header.salt2) break;
    const afterHeader = walChecksum(frame.subarray(0, 8), header.bigEndianChecksums, running);
    const next = walChecksum(frame.subarray(walFrameHeaderBytes), header.bigEndianChecksums, afterHeader);
    if (next[0] !== frame.readUInt32BE(16) || next[1] !== frame.readUInt32BE(20)) break;
    running = next;
    frameCount += 1;
    if (frame.readUInt32BE(4) !== 0) {
      committedEnd = offset + frameBytes;
      committedChecksum = next;
      committedFrameCount = frameCount;
      commitCount += 1;
    }
  }
  return {
    bytes: frames.subarray(0, committedEnd),
    frameCount: committedFrameCount,
    commitCount,
    checksum: committedChecksum,
  };
}

/** One frame of shipped log: the page it writes and, at a commit, the database's size in pages. */
export interface ShippedFrame {
  readonly pageNumber: number;
  readonly databasePagesAfterCommit: number;
  readonly page: Buffer;
}

/** The frames of a shipped segment, in order; throws when its length is not whole frames. */
export function* framesOf(bytes: Buffer, pageSize: number): Generator<ShippedFrame> {
  const frameBytes = walFrameHeaderBytes + pageSize;
  if (bytes.length % frameBytes !== 0) throw new Error(`not a whole number of ${pageSize}-byte frames`);
  for (let offset = 0; offset < bytes.length; offset += frameBytes) {
    yield {
      pageNumber: bytes.readUInt32BE(offset),
      databasePagesAfterCommit: bytes.readUInt32BE(offset + 4),
      page: bytes.subarray(offset + walFrameHeaderBytes, offset + frameBytes),
    };
  }
}
