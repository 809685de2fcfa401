import { closeSync, createReadStream, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import SqliteDatabase from 'better-sqlite3';
import { errorFacts, isAthanorError } from '../../domain/errors.js';
import { getBlob } from '../../objects/blob-store.js';
import type { ObjectStore } from '../../objects/object-store.js';
import { appVersion } from '../../version.js';
import { readObject } from '../backup/backup-target.js';
import type { EncryptionSettings, StreamEncrypter } from '../backup/encryption.js';
import { prepareEncryption } from '../backup/encryption.js';
import { pitrMetrics } from './pitr-metrics.js';
import type { GenerationRecord } from './replica-layout.js';
import {
  encodeGroups,
  listGenerations,
  listSegments,
  newGenerationId,
  blobTargetPath,
  replicaFormat,
  replicaFormatVersion,
  replicaKeys,
} from './replica-layout.js';
import type { WalHeader } from './wal-format.js';
import { committedFrames, parseWalHeader, walFrameHeaderBytes, walHeaderBytes } from './wal-format.js';

export interface SqliteReplicatorOptions {
  /** The SQLite database file (in WAL mode). */
  readonly databaseFile: string;
  readonly target: ObjectStore;
  readonly encryption: EncryptionSettings;
  /** A local object store whose result blobs are copied beside the replica; none for S3 objects. */
  readonly objects?: ObjectStore;
  /** How often the log is read; default 100 ms. */
  readonly intervalMs?: number;
  /** A new generation (a fresh base) after this long; default one hour. */
  readonly generationMs?: number;
  /** Generations no longer needed to reach this far back are deleted; default 24 hours. */
  readonly windowMs?: number;
  readonly log?: (
    level: 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ) => void;
  readonly now?: () => Date;
}

/** What `/metrics` and `backup status` report about the replication. */
export interface ReplicationStatus {
  readonly running: boolean;
  readonly generation: string | undefined;
  /** When the newest transaction now durable at the target was read from the log. */
  readonly lastReplicatedAt: string | undefined;
  /** How long the oldest transaction not yet durable at the target has waited; 0 when none. */
  readonly lagMs: number;
  readonly failures: number;
  readonly lastError: string | undefined;
}

/** `pitr/sqlite/status.json`: the running replicator's last word. */
export interface ReplicaHeartbeat extends ReplicationStatus {
  readonly at: string;
}

/** How often the replicator writes its heartbeat; `backup status` calls one 4 times older stale. */
export const heartbeatIntervalMs = 5000;

interface Group {
  readonly readAtMs: number;
  readonly frames: Buffer;
}

interface LogPosition {
  header: WalHeader | undefined;
  /** Frames of this log consumed (shipped or in the base). */
  frames: number;
  checksum: readonly [number, number];
}

const sqliteBusy = (error: unknown) => (error as { code?: string }).code?.startsWith('SQLITE_BUSY') === true;

/**
 * Continuous replication of a SQLite database to a backup target, built on SQLite's documented
 * WAL: the committed frames of the log are shipped, in order, on top of a copy of the database
 * file (a generation's base). It runs in the process that writes the database.
 *
 * Invariant: while a generation runs, this replicator holds a read transaction on its own
 * connection at all times (it is moved forward only while a write lock keeps every writer out).
 * A checkpoint cannot copy frames past a reader's mark into the database file, and the log is
 * only restarted once every frame is in the file and no reader needs it; so no frame is
 * overwritten before it was read. Anything unexpected (a log restarted twice, the file replaced)
 * starts a new generation from a fresh base: never a gap.
 */
export class SqliteReplicator {
  readonly #options: SqliteReplicatorOptions;
  readonly #walFile: string;
  #reader: SqliteDatabase.Database | undefined;
  #locker: SqliteDatabase.Database | undefined;
  #timer: NodeJS.Timeout | undefined;
  #generation: string | undefined;
  #generationStartedMs = 0;
  #inode = 0;
  #position: LogPosition = { header: undefined, frames: 0, checksum: [0, 0] };
  #pending: Group[] = [];
  #segmentIndex = 0;
  #encrypter: StreamEncrypter | undefined;
  #recipients: readonly string[] | undefined;
  #uploading: Promise<void> = Promise.resolve();
  #uploadRunning = false;
  #startingGeneration: Promise<void> | undefined;
  #holdReader = false;
  #lastReplicatedMs: number | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #lastBlobRowid = 0;
  #lastBlobScanMs = 0;
  #lastRetentionMs = 0;
  #stopped = false;

  constructor(options: SqliteReplicatorOptions) {
    this.#options = options;
    this.#walFile = `${options.databaseFile}-wal`;
  }

  #now(): number {
    return (this.#options.now?.() ?? new Date()).getTime();
  }

  #log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) {
    this.#options.log?.(level, message, fields);
  }

  /** Opens the connections and begins a generation (its base is uploaded in the background). */
  async start(): Promise<void> {
    this.#reader = new SqliteDatabase(this.#options.databaseFile, { fileMustExist: true });
    this.#locker = new SqliteDatabase(this.#options.databaseFile, { fileMustExist: true });
    // Never wait for the write lock: the serving connection may hold it across an await on this
    // same thread, and a wait here would then last until the busy timeout.
    this.#locker.pragma('busy_timeout = 0');
    this.#reader.pragma('busy_timeout = 5000');
    await this.#prepareKeys();
    this.#beginGeneration();
    await this.#startingGeneration;
    const interval = this.#options.intervalMs ?? 100;
    this.#timer = setInterval(() => this.#tick(), interval);
    this.#timer.unref();
  }

  /** Ships what is committed, waits for the uploads, closes the connections. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    if (this.#timer) clearInterval(this.#timer);
    try {
      if (this.#startingGeneration) await this.#startingGeneration.catch(() => {});
      if (!this.#holdReader) this.#readLog();
      this.#scheduleUpload();
      await this.#uploading;
    } finally {
      this.#stopped = true;
      this.#reader?.close();
      this.#locker?.close();
    }
  }

  status(): ReplicationStatus {
    const oldest = this.#pending[0];
    return {
      running: !this.#stopped && this.#reader !== undefined,
      generation: this.#generation,
      lastReplicatedAt:
        this.#lastReplicatedMs === undefined ? undefined : new Date(this.#lastReplicatedMs).toISOString(),
      lagMs: oldest ? Math.max(0, this.#now() - oldest.readAtMs) : 0,
      failures: this.#failures,
      lastError: this.#lastError,
    };
  }

  /** Resolves once everything read from the log so far is durable at the target. */
  async flush(): Promise<void> {
    if (this.#startingGeneration) await this.#startingGeneration;
    if (!this.#holdReader) this.#readLog();
    this.#scheduleUpload();
    await this.#uploading;
    while (this.#pending.length > 0 && !this.#stopped) {
      this.#scheduleUpload();
      await this.#uploading;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async #prepareKeys(): Promise<void> {
    const encryption = this.#options.encryption;
    if (encryption.mode === 'none') return;
    const target = this.#options.target;
    const previous =
      encryption.mode === 'passphrase' && (await target.head(replicaKeys.keyFile))
        ? await readObject(target, replicaKeys.keyFile, 1024 * 1024)
        : undefined;
    const prepared = await prepareEncryption(encryption, previous);
    if (prepared.keyFile && !previous?.equals(prepared.keyFile))
      await target.put(replicaKeys.keyFile, prepared.keyFile);
    this.#encrypter = prepared.encrypter;
    this.#recipients = prepared.recipients;
  }

  /** Pins a read transaction; the caller holds no other read transaction on the reader. */
  #pinReader() {
    const reader = this.#reader as SqliteDatabase.Database;
    if (reader.inTransaction) reader.exec('COMMIT');
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM sqlite_master').get();
  }

  /**
   * Starts a generation: pins the reader, takes the log's committed frames as they stand, and
   * copies the database file while the pin keeps checkpoints from copying later frames into it.
   * The copy is then uploaded, and the generation record after it.
   */
  #beginGeneration(): void {
    const startedMs = this.#now();
    const generation = newGenerationId(new Date(startedMs));
    this.#holdReader = true;
    this.#pinReader();
    this.#inode = statSync(this.#options.databaseFile).ino;
    this.#position = { header: undefined, frames: 0, checksum: [0, 0] };
    this.#pending = [];
    this.#segmentIndex = 0;
    this.#readLog();
    const pageSize = Number((this.#reader as SqliteDatabase.Database).pragma('page_size', { simple: true }));
    const starting = (async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'athanor-replica-'));
      try {
        const copy = path.join(dir, 'base.db');
        await copyFile(this.#options.databaseFile, copy);
        // The copy is stable: the reader may move on while it uploads.
        this.#holdReader = false;
        const encrypted = this.#encrypter !== undefined;
        const gzipped = createReadStream(copy).pipe(createGzip({ level: 1 }));
        const body = this.#encrypter ? await this.#encrypter.encrypt(gzipped) : gzipped;
        await this.#options.target.put(replicaKeys.base(generation, encrypted), body);
        const record: GenerationRecord = {
          format: replicaFormat,
          version: replicaFormatVersion,
          generation,
          startedAt: new Date(startedMs).toISOString(),
          pageSize,
          appVersion,
          encryption: {
            mode: this.#options.encryption.mode,
            recipients: this.#recipients ?? [],
          },
        };
        await this.#options.target.put(
          replicaKeys.generation(generation),
          Buffer.from(`${JSON.stringify(record, null, 2)}\n`),
        );
        this.#generation = generation;
        this.#generationStartedMs = startedMs;
        this.#lastReplicatedMs = startedMs;
        this.#log('info', 'point-in-time replication: new generation', { generation });
      } finally {
        this.#holdReader = false;
        await rm(dir, { recursive: true, force: true });
      }
    })();
    this.#startingGeneration = starting.then(
      () => {
        this.#startingGeneration = undefined;
        this.#scheduleUpload();
      },
      (error: unknown) => {
        this.#startingGeneration = undefined;
        this.#fail(error);
        this.#generation = undefined;
      },
    );
  }

  #fail(error: unknown) {
    this.#failures += 1;
    this.#lastError = errorFacts(error).message;
    pitrMetrics.failures.inc();
    this.#log('warn', 'point-in-time replication failed; retrying', { error: this.#lastError });
  }

  /**
   * Reads the committed frames past the position into a pending group. Returns false when the log
   * cannot be continued (then a new generation must begin).
   */
  #readLog(): boolean {
    let fd: number;
    try {
      fd = openSync(this.#walFile, 'r');
    } catch {
      return true;
    }
    try {
      const size = fstatSync(fd).size;
      const headerBytes = Buffer.alloc(walHeaderBytes);
      if (readSync(fd, headerBytes, 0, walHeaderBytes, 0) < walHeaderBytes) return true;
      const header = parseWalHeader(headerBytes);
      if (!header) return true;
      const known = this.#position.header;
      if (!known || known.salt1 !== header.salt1 || known.salt2 !== header.salt2) {
        // A restarted log continues the generation only when it is the next one: SQLite bumps the
        // checkpoint sequence and the first salt by one at each restart.
        const next =
          !known ||
          (header.checkpointSequence === (known.checkpointSequence + 1) >>> 0 &&
            header.salt1 === (known.salt1 + 1) >>> 0);
        if (!next) return false;
        this.#position = { header, frames: 0, checksum: header.checksum };
      }
      const frameBytes = walFrameHeaderBytes + header.pageSize;
      const from = walHeaderBytes + this.#position.frames * frameBytes;
      if (size <= from) return true;
      const tail = Buffer.allocUnsafe(size - from);
      const read = readSync(fd, tail, 0, tail.length, from);
      const committed = committedFrames(header, tail.subarray(0, read), this.#position.checksum);
      if (committed.frameCount === 0) return true;
      this.#position.frames += committed.frameCount;
      this.#position.checksum = committed.checksum;
      // A view into this read's own buffer, which nothing else holds.
      this.#pending.push({ readAtMs: this.#now(), frames: committed.bytes });
      return true;
    } finally {
      closeSync(fd);
    }
  }

  #tick(): void {
    if (this.#stopped || this.#startingGeneration) return;
    try {
      if (statSync(this.#options.databaseFile).ino !== this.#inode) {
        this.#log('warn', 'point-in-time replication: the database file was replaced; new generation');
        this.#beginGeneration();
        return;
      }
      if (!this.#readLog()) {
        this.#log('warn', 'point-in-time replication: the log was restarted out of turn; new generation');
        this.#beginGeneration();
        return;
      }
      if (!this.#holdReader) this.#moveReader();
      const generationMs = this.#options.generationMs ?? 60 * 60 * 1000;
      if (this.#now() - this.#generationStartedMs >= generationMs && this.#pending.length === 0) {
        this.#beginGeneration();
        return;
      }
    } catch (error) {
      this.#fail(error);
    }
    this.#scheduleUpload();
    this.#shipBlobs();
    this.#applyRetention();
    this.#writeHeartbeat();
  }

  #lastHeartbeatMs = 0;

  /** Every few seconds, the replicator's state at the target, for `backup status` on any host. */
  #writeHeartbeat(): void {
    if (this.#now() - this.#lastHeartbeatMs < heartbeatIntervalMs || this.#generation === undefined) return;
    this.#lastHeartbeatMs = this.#now();
    const status = this.status();
    pitrMetrics.lag.set(status.lagMs / 1000);
    pitrMetrics.healthy.set(status.lastError === undefined && status.lagMs < 10_000 ? 1 : 0);
    const heartbeat: ReplicaHeartbeat = { at: new Date(this.#now()).toISOString(), ...status };
    void this.#options.target
      .put(replicaKeys.heartbeat, Buffer.from(`${JSON.stringify(heartbeat)}\n`))
      .catch((error: unknown) => this.#fail(error));
  }

  /** Moves the reader's pin to the log's end, under a write lock so no frame slips past unread. */
  #moveReader(): void {
    const locker = this.#locker as SqliteDatabase.Database;
    try {
      locker.exec('BEGIN IMMEDIATE');
    } catch (error) {
      if (sqliteBusy(error)) return;
      throw error;
    }
    try {
      if (!this.#readLog()) throw new Error('the log was restarted out of turn');
      this.#pinReader();
    } finally {
      locker.exec('ROLLBACK');
    }
  }

  #scheduleUpload(): void {
    if (this.#uploadRunning || this.#generation === undefined || this.#pending.length === 0) return;
    this.#uploadRunning = true;
    this.#uploading = (async () => {
      try {
        while (this.#pending.length > 0 && this.#generation !== undefined && !this.#startingGeneration) {
          const queue = this.#pending;
          const groups = queue.slice();
          const generation = this.#generation;
          const newest = groups.at(-1) as Group;
          const encrypted = this.#encrypter !== undefined;
          // Compressed here, not on the thread pool: there it queued behind the file writes and doubled the lag.
          const plain = gzipSync(encodeGroups(groups), { level: 1 });
          const body = this.#encrypter ? await this.#encrypter.encrypt(Readable.from([plain])) : plain;
          try {
            await this.#options.target.put(
              replicaKeys.segment(generation, this.#segmentIndex, Math.round(newest.readAtMs), encrypted),
              body,
            );
          } catch (error) {
            this.#fail(error);
            await new Promise((resolve) => setTimeout(resolve, 500));
            continue;
          }
          // A generation begun meanwhile has its own queue and numbering.
          if (this.#generation !== generation || this.#pending !== queue) break;
          this.#segmentIndex += 1;
          queue.splice(0, groups.length);
          this.#lastReplicatedMs = newest.readAtMs;
          this.#lastError = undefined;
          pitrMetrics.lastReplicated.set(newest.readAtMs / 1000);
        }
      } finally {
        this.#uploadRunning = false;
        pitrMetrics.lag.set(this.status().lagMs / 1000);
      }
    })();
  }

  /** Copies new results' blobs from a local object store beside the replica, about once a second. */
  #shipBlobs(): void {
    const objects = this.#options.objects;
    if (!objects || this.#now() - this.#lastBlobScanMs < 1000 || !this.#locker) return;
    this.#lastBlobScanMs = this.#now();
    let rows: { rowid: number; sha: string }[];
    const select = (inlineColumn: boolean) =>
      (this.#locker as SqliteDatabase.Database)
        .prepare(
          `SELECT rowid, blob_sha256 AS sha FROM results WHERE rowid > ? AND blob_sha256 IS NOT NULL` +
            `${inlineColumn ? ' AND body IS NULL' : ''} ORDER BY rowid LIMIT 2000`,
        )
        .all(this.#lastBlobRowid) as { rowid: number; sha: string }[];
    try {
      rows = select(true);
    } catch {
      // A database from before small results were kept in their row (migration 9).
      try {
        rows = select(false);
      } catch {
        return;
      }
    }
    if (rows.length === 0) return;
    const last = (rows.at(-1) as { rowid: number }).rowid;
    void (async () => {
      for (const row of rows) {
        const key = `${replicaKeys.blobsRoot}${blobTargetPath(row.sha, this.#recipients)}`;
        try {
          if (await this.#options.target.head(key)) continue;
          const plain = await getBlob(objects, row.sha);
          await this.#options.target.put(key, this.#encrypter ? await this.#encrypter.encrypt(plain) : plain);
        } catch (error) {
          if (isAthanorError(error) && error.code === 'not_found') continue;
          this.#fail(error);
          return;
        }
      }
      this.#lastBlobRowid = Math.max(this.#lastBlobRowid, last);
    })();
  }

  /** Deletes generations no point inside the window needs, about once a minute. */
  #applyRetention(): void {
    if (this.#now() - this.#lastRetentionMs < 60_000 || this.#generation === undefined) return;
    this.#lastRetentionMs = this.#now();
    const windowMs = this.#options.windowMs ?? 24 * 60 * 60 * 1000;
    const current = this.#generation;
    void (async () => {
      const generations = await listGenerations(this.#options.target);
      const horizon = this.#now() - windowMs;
      // The newest generation begun at or before the horizon still serves points after it.
      const keepFrom = generations.findLastIndex((g) => Date.parse(g.startedAt) <= horizon);
      for (const old of generations.slice(0, Math.max(0, keepFrom))) {
        if (old.generation === current) continue;
        await this.#options.target.delete(replicaKeys.generation(old.generation));
        for (const segment of await listSegments(this.#options.target, old.generation))
          await this.#options.target.delete(segment.key);
        for (const encrypted of [false, true])
          await this.#options.target.delete(replicaKeys.base(old.generation, encrypted));
      }
    })().catch((error: unknown) => this.#fail(error));
  }
}
