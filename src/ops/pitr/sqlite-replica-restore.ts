import { closeSync, createWriteStream, ftruncateSync, openSync, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import SqliteDatabase from 'better-sqlite3';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { readObject } from '../backup/backup-target.js';
import type { DecryptionKeys, StreamDecrypter } from '../backup/encryption.js';
import { prepareDecryption } from '../backup/encryption.js';
import type { GenerationRecord } from './replica-layout.js';
import { decodeGroups, listGenerations, listSegments, replicaKeys } from './replica-layout.js';
import { framesOf } from './wal-format.js';

export interface ReplicaPoint {
  readonly generation: string;
  /** When the newest transaction applied was read from the log (it committed at or before). */
  readonly restoredTo: string;
  readonly segments: number;
  readonly transactions: number;
}

/** The earliest and latest points a target's replica restores to, or undefined when it holds none. */
export async function replicaRange(
  target: ObjectStore,
): Promise<{ oldest: string; newest: string; generations: number } | undefined> {
  const generations = await listGenerations(target);
  const first = generations[0];
  const last = generations.at(-1);
  if (!first || !last) return undefined;
  const segments = await listSegments(target, last.generation);
  const newestMs = Math.max(Date.parse(last.startedAt), ...segments.map((s) => s.newestMs));
  return {
    oldest: first.startedAt,
    newest: new Date(newestMs).toISOString(),
    generations: generations.length,
  };
}

async function decrypterFor(
  target: ObjectStore,
  record: GenerationRecord,
  keys: DecryptionKeys,
): Promise<StreamDecrypter | undefined> {
  if (record.encryption.mode === 'none') return undefined;
  const keyFile =
    record.encryption.mode === 'passphrase'
      ? await readObject(target, replicaKeys.keyFile, 1024 * 1024)
      : undefined;
  return prepareDecryption(
    {
      id: `replica ${record.generation}`,
      recipients: record.encryption.recipients,
      ...(keyFile ? { keyFile } : {}),
    },
    keys,
  );
}

async function readPlain(
  target: ObjectStore,
  key: string,
  decrypter: StreamDecrypter | undefined,
): Promise<Buffer> {
  const raw = await target.get(key);
  const plain = decrypter ? await decrypter.decrypt(raw) : raw;
  const chunks: Buffer[] = [];
  for await (const chunk of plain) chunks.push(chunk as Buffer);
  return gunzipSync(Buffer.concat(chunks));
}

/**
 * Rebuilds the replicated database as it was at `toTime` into `outFile`: the base of the newest
 * generation begun at or before then, with every transaction read from the log by then applied
 * on top, frame by frame as a checkpoint would. Checks the result with `PRAGMA integrity_check`.
 */
export async function rebuildReplica(options: {
  readonly target: ObjectStore;
  readonly toTime: Date;
  readonly keys: DecryptionKeys;
  readonly outFile: string;
  /** The flag `toTime` came from, for messages. */
  readonly flag?: string;
}): Promise<ReplicaPoint> {
  const { target } = options;
  const flag = options.flag ?? '--to-time';
  const generations = await listGenerations(target);
  if (generations.length === 0) {
    throw new AthanorError(
      'backup_not_found',
      `there is no point-in-time replica at ${target.url}: it is written by 'athanor serve' while ATHANOR_PITR is on ` +
        `(the default with scheduled backups); 'athanor backup list' shows the snapshots there`,
    );
  }
  const toMs = options.toTime.getTime();
  const record = generations.findLast((g) => Date.parse(g.startedAt) <= toMs);
  if (!record) {
    throw new AthanorError(
      'invalid_argument',
      `${flag} ${options.toTime.toISOString()} is before the oldest point the replica at ${target.url} restores to ` +
        `(${(generations[0] as GenerationRecord).startedAt}): pick a later time, or restore a snapshot ('athanor backup list')`,
    );
  }
  const decrypter = await decrypterFor(target, record, options.keys);
  const encrypted = record.encryption.mode !== 'none';
  const raw = await target.get(replicaKeys.base(record.generation, encrypted)).catch((error: unknown) => {
    if (isAthanorError(error) && error.code === 'not_found')
      throw new AthanorError(
        'backup_corrupt',
        `the base of replica generation ${record.generation} is missing`,
      );
    throw error;
  });
  const plain = decrypter ? await decrypter.decrypt(raw) : raw;
  await pipeline(plain, createGunzip(), createWriteStream(options.outFile));

  const segments = await listSegments(target, record.generation);
  const fd = openSync(options.outFile, 'r+');
  let applied = 0;
  let transactions = 0;
  let restoredToMs = Date.parse(record.startedAt);
  try {
    let expected = 0;
    outer: for (const segment of segments) {
      if (segment.index !== expected) {
        throw new AthanorError(
          'backup_corrupt',
          `replica generation ${record.generation} lacks segment ${expected} (the next is ${segment.index}): ` +
            `restore to an earlier time, or a snapshot`,
        );
      }
      expected += 1;
      const bytes = await readPlain(target, segment.key, decrypter);
      applied += 1;
      for (const group of decodeGroups(bytes)) {
        if (group.readAtMs > toMs) break outer;
        for (const frame of framesOf(group.frames, record.pageSize)) {
          writeSync(fd, frame.page, 0, frame.page.length, (frame.pageNumber - 1) * record.pageSize);
          if (frame.databasePagesAfterCommit !== 0) {
            ftruncateSync(fd, frame.databasePagesAfterCommit * record.pageSize);
            transactions += 1;
          }
        }
        restoredToMs = group.readAtMs;
      }
      if (segment.newestMs > toMs) break;
    }
  } finally {
    closeSync(fd);
  }
  const check = new SqliteDatabase(options.outFile, { fileMustExist: true });
  try {
    const result = check.pragma('integrity_check', { simple: true });
    if (result !== 'ok') {
      throw new AthanorError(
        'backup_corrupt',
        `the database rebuilt from replica generation ${record.generation} fails its integrity check (${String(result)})`,
      );
    }
    check.pragma('journal_mode = DELETE');
  } finally {
    check.close();
  }
  return {
    generation: record.generation,
    restoredTo: new Date(restoredToMs).toISOString(),
    segments: applied,
    transactions,
  };
}
