import { execFile } from 'node:child_process';
import { processEnvironment } from '../../config/environment.js';
import { chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Config } from '../../config/resolve-config.js';
import { redactUrl } from '../../domain/database-url.js';
import { AthanorError } from '../../domain/errors.js';
import { openObjectStore } from '../../objects/open-object-store.js';
import { chooseBackupTarget } from '../backup/backup-env.js';
import { BackupTarget } from '../backup/target.js';
import type { BlobCheck } from './restore-to-time.js';
import { restoreReferencedBlobs } from './restore-to-time.js';

const run = promisify(execFile);

/** The pgBackRest stanza Athanor configures: one cluster per configuration file. */
export const stanza = 'athanor';

interface ClusterFacts {
  readonly dataDirectory: string;
  readonly port: number;
  readonly socketDirectory: string | undefined;
  readonly archiveMode: string;
  readonly archiveCommand: string;
  readonly user: string;
  readonly database: string;
  readonly serverVersionNum: number;
  /** The OS user owning the data directory, when this process runs as root and it is another. */
  readonly runAs: string | undefined;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (cause) {
    throw new AthanorError(
      'database_unavailable',
      `cannot reach PostgreSQL at ${redactUrl(url)}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function clusterFacts(url: string): Promise<ClusterFacts> {
  return withClient(url, async (client) => {
    const show = async (name: string) =>
      String(((await client.query(`SHOW ${name}`)).rows[0] as Record<string, unknown>)[name]);
    const dataDirectory = await show('data_directory');
    const who = (await client.query('SELECT current_user AS u, current_database() AS d')).rows[0] as {
      u: string;
      d: string;
    };
    let runAs: string | undefined;
    if (process.getuid?.() === 0 && existsSync(dataDirectory)) {
      const uid = statSync(dataDirectory).uid;
      if (uid !== 0) runAs = (await run('id', ['-nu', String(uid)])).stdout.trim();
    }
    return {
      dataDirectory,
      port: Number(await show('port')),
      socketDirectory: (await show('unix_socket_directories')).split(',')[0]?.trim() || undefined,
      archiveMode: await show('archive_mode'),
      archiveCommand: await show('archive_command'),
      user: who.u,
      database: who.d,
      serverVersionNum: Number(await show('server_version_num')),
      runAs,
    };
  });
}

async function pgbackrestBinary(): Promise<string> {
  for (const dir of (processEnvironment().PATH ?? '')
    .split(path.delimiter)
    .concat(['/usr/bin', '/usr/local/bin'])) {
    const candidate = path.join(dir, 'pgbackrest');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new AthanorError(
    'invalid_config',
    "pgbackrest is not installed: install it (Debian: 'apt-get install pgbackrest') on the database host",
  );
}

/** Runs pgBackRest as the cluster's owner; its failure becomes an error quoting its message. */
async function pgbackrest(
  facts: Pick<ClusterFacts, 'runAs'>,
  configFile: string,
  args: readonly string[],
): Promise<string> {
  const binary = await pgbackrestBinary();
  const argv = [`--config=${configFile}`, `--stanza=${stanza}`, ...args];
  const [file, fullArgs] = facts.runAs
    ? ['runuser', ['-u', facts.runAs, '--', binary, ...argv]]
    : [binary, argv];
  try {
    return (await run(file, fullArgs, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (cause) {
    const output =
      `${(cause as { stdout?: string }).stdout ?? ''}${(cause as { stderr?: string }).stderr ?? ''}`.trim();
    throw new AthanorError(
      'backup_target_unavailable',
      `pgbackrest ${args[0] ?? ''} failed: ${output || (cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/** The `[global]` repository lines for a backup target URL. */
function repositoryLines(targetUrl: string, env: NodeJS.ProcessEnv): string[] {
  if (targetUrl.startsWith('file:'))
    return ['repo1-type=posix', `repo1-path=${path.join(targetUrl.slice(5), 'pitr', 'postgres')}`];
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(targetUrl);
  if (!s3) {
    throw new AthanorError(
      'invalid_argument',
      `--target ${targetUrl} is not a backup target URL: use file:<dir> or s3://bucket/prefix`,
    );
  }
  const endpoint = new URL(
    env.AWS_ENDPOINT_URL ?? `https://s3.${env.AWS_REGION ?? 'us-east-1'}.amazonaws.com`,
  );
  return [
    'repo1-type=s3',
    `repo1-s3-bucket=${s3[1]}`,
    `repo1-path=/${path.posix.join(s3[2] ?? '', 'pitr', 'postgres')}`,
    `repo1-s3-endpoint=${endpoint.hostname}`,
    ...(endpoint.port ? [`repo1-storage-port=${endpoint.port}`] : []),
    `repo1-s3-region=${env.AWS_REGION ?? 'us-east-1'}`,
    `repo1-s3-key=${env.AWS_ACCESS_KEY_ID ?? ''}`,
    `repo1-s3-key-secret=${env.AWS_SECRET_ACCESS_KEY ?? ''}`,
    'repo1-s3-uri-style=path',
  ];
}

export interface PgbackrestSetupResult {
  readonly engine: 'pgbackrest';
  readonly ok: boolean;
  readonly configFile: string;
  readonly restartNeeded: boolean;
  readonly message: string;
}

/**
 * Writes pgBackRest's configuration for the configured cluster and backup target, points
 * `archive_command` at it, creates the stanza, checks archiving and takes the first full backup.
 * Run on the database host. Turning `archive_mode` on needs a PostgreSQL restart: then it says so
 * and stops; run it again after the restart. Running it again is harmless.
 */
export async function setupPgbackrest(options: {
  readonly config: Pick<Config, 'databaseUrl' | 'pgbackrestConfig'>;
  readonly targetUrl: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly onStep?: ((step: string) => void) | undefined;
}): Promise<PgbackrestSetupResult> {
  const step = options.onStep ?? (() => {});
  const configFile = options.config.pgbackrestConfig;
  const facts = await clusterFacts(options.config.databaseUrl);
  const binary = await pgbackrestBinary();
  const dir = path.dirname(configFile);
  // Directories made here belong to the cluster's owner, who runs archive-push.
  const made: string[] = [];
  const makeDir = (target: string) => {
    const first = mkdirSync(target, { recursive: true, mode: 0o750 });
    if (first === undefined) return;
    for (let p = target; p.length >= first.length; p = path.dirname(p)) made.push(p);
  };
  makeDir(dir);
  const repo = repositoryLines(options.targetUrl, options.env ?? processEnvironment());
  const repoPath = options.targetUrl.startsWith('file:') ? repo[1]?.slice('repo1-path='.length) : undefined;
  if (repoPath) makeDir(repoPath);
  const lines = [
    '# Written by athanor backup pitr setup; run it again after changing the target.',
    '[global]',
    ...repo,
    'repo1-retention-full=2',
    'start-fast=y',
    'archive-async=n',
    'log-level-console=warn',
    'log-level-file=off',
    `lock-path=${path.join(dir, 'lock')}`,
    '',
    `[${stanza}]`,
    `pg1-path=${facts.dataDirectory}`,
    `pg1-port=${facts.port}`,
    ...(facts.socketDirectory ? [`pg1-socket-path=${facts.socketDirectory}`] : []),
    `pg1-user=${facts.user}`,
    `pg1-database=${facts.database}`,
    '',
  ];
  // It holds the repository's credentials: readable by its owner only.
  writeFileSync(configFile, lines.join('\n'), { mode: 0o600 });
  if (facts.runAs) {
    const uid = statSync(facts.dataDirectory).uid;
    const gid = statSync(facts.dataDirectory).gid;
    for (const p of [...made, configFile]) chownSync(p, uid, gid);
  }
  step(`wrote ${configFile} (stanza ${stanza}, repository ${options.targetUrl})`);
  const archiveCommand = `${binary} --config=${configFile} --stanza=${stanza} archive-push %p`;
  const restartNeeded = facts.archiveMode === 'off';
  await withClient(options.config.databaseUrl, async (client) => {
    await client.query(`ALTER SYSTEM SET archive_command = ${pg.escapeLiteral(archiveCommand)}`);
    if (restartNeeded) await client.query(`ALTER SYSTEM SET archive_mode = 'on'`);
    await client.query('SELECT pg_reload_conf()');
  });
  step(`archive_command set to pgBackRest's archive-push`);
  if (restartNeeded) {
    return {
      engine: 'pgbackrest',
      ok: false,
      configFile,
      restartNeeded,
      message:
        "archive_mode was off and is now set on, which takes effect at PostgreSQL's next restart: restart it, " +
        "then run 'athanor backup pitr setup' again",
    };
  }
  // The new archive_command must be in force before the stanza check pushes a WAL file.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await pgbackrest(facts, configFile, ['stanza-create']);
  step('stanza created');
  await pgbackrest(facts, configFile, ['check']);
  step('archiving checked: a WAL file reached the repository');
  const info = await repositoryInfo(facts, configFile);
  if (info.backups.length === 0) {
    await pgbackrest(facts, configFile, ['backup', '--type=full']);
    step('first full backup taken');
  }
  return {
    engine: 'pgbackrest',
    ok: true,
    configFile,
    restartNeeded: false,
    message: `point-in-time recovery is on: WAL is archived by pgBackRest to ${options.targetUrl}`,
  };
}

interface RepositoryInfo {
  readonly backups: readonly { readonly label: string; readonly startedAt: Date; readonly stoppedAt: Date }[];
  readonly archiveMax: string | undefined;
}

async function repositoryInfo(
  facts: Pick<ClusterFacts, 'runAs'>,
  configFile: string,
): Promise<RepositoryInfo> {
  const parsed = JSON.parse(await pgbackrest(facts, configFile, ['info', '--output=json'])) as {
    status?: { code: number; message: string };
    backup?: { label: string; timestamp: { start: number; stop: number } }[];
    archive?: { max?: string }[];
  }[];
  const entry = parsed[0];
  if (!entry || (entry.status && entry.status.code !== 0 && entry.status.code !== 2)) {
    throw new AthanorError(
      'invalid_argument',
      `the pgBackRest repository in ${configFile} holds no stanza '${stanza}' (${entry?.status?.message ?? 'empty'}): ` +
        "it is not an Athanor point-in-time repository; run 'athanor backup pitr setup' (or fix --target)",
    );
  }
  return {
    backups: (entry.backup ?? []).map((b) => ({
      label: b.label,
      startedAt: new Date(b.timestamp.start * 1000),
      stoppedAt: new Date(b.timestamp.stop * 1000),
    })),
    archiveMax: entry.archive?.[0]?.max,
  };
}

export interface ArchiveVerdict {
  readonly engine: 'pgbackrest';
  readonly ok: boolean;
  readonly configFile: string;
  readonly oldest: string | undefined;
  readonly lastArchivedWal: string | undefined;
  readonly lastArchivedAt: string | undefined;
  readonly lastFailedWal: string | undefined;
  readonly lastFailedAt: string | undefined;
  /** WAL files waiting to be archived, and how long the oldest has waited. */
  readonly waitingWalFiles: number;
  readonly lagMs: number;
  readonly problem: AthanorError | undefined;
}

/** The archive's health: pgBackRest's repository, PostgreSQL's archiver, and with `check` a live push. */
export async function pgbackrestVerdict(options: {
  readonly config: Pick<Config, 'databaseUrl' | 'pgbackrestConfig'>;
  readonly maxLagMs: number;
  readonly check?: boolean;
}): Promise<ArchiveVerdict> {
  const configFile = options.config.pgbackrestConfig;
  if (!existsSync(configFile)) {
    throw new AthanorError(
      'invalid_argument',
      `there is no pgBackRest configuration at ${configFile} (ATHANOR_PGBACKREST_CONFIG): run 'athanor backup pitr setup' first`,
    );
  }
  const facts = await clusterFacts(options.config.databaseUrl);
  const archiver = await withClient(options.config.databaseUrl, async (client) => {
    const stats = (
      await client.query(
        'SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time, failed_count FROM pg_stat_archiver',
      )
    ).rows[0] as {
      last_archived_wal: string | null;
      last_archived_time: Date | null;
      last_failed_wal: string | null;
      last_failed_time: Date | null;
    };
    const waiting = (
      await client.query(
        "SELECT count(*)::int AS n, min(modification) AS oldest FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
      )
    ).rows[0] as { n: number; oldest: Date | null };
    return { stats, waiting };
  });
  let info: RepositoryInfo | undefined;
  let unreadable: AthanorError | undefined;
  try {
    info = await repositoryInfo(facts, configFile);
  } catch (error) {
    // A repository that was set up and cannot be read now is an outage: red, not a usage error.
    unreadable = new AthanorError(
      'backup_stale',
      `the pgBackRest repository cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const now = Date.now();
  const lagMs = archiver.waiting.oldest ? Math.max(0, now - archiver.waiting.oldest.getTime()) : 0;
  const { stats } = archiver;
  let problem: AthanorError | undefined;
  if (facts.archiveMode === 'off')
    problem = new AthanorError(
      'backup_stale',
      "WAL archiving is off (archive_mode): run 'athanor backup pitr setup'",
    );
  if (
    !problem &&
    stats.last_failed_time &&
    (!stats.last_archived_time || stats.last_failed_time > stats.last_archived_time)
  ) {
    problem = new AthanorError(
      'backup_stale',
      `WAL archiving is failing: ${stats.last_failed_wal ?? '?'} could not be archived at ${stats.last_failed_time.toISOString()} ` +
        `(${archiver.waiting.n} WAL files wait; PostgreSQL keeps them until they are archived). See the PostgreSQL log`,
    );
  }
  problem ??= unreadable;
  if (!problem && lagMs > options.maxLagMs)
    problem = new AthanorError(
      'backup_stale',
      `WAL archiving is ${Math.round(lagMs / 1000)} s behind (${archiver.waiting.n} files wait)`,
    );
  if (!problem && info && info.backups.length === 0)
    problem = new AthanorError(
      'backup_stale',
      "the pgBackRest repository holds no base backup: run 'athanor backup pitr setup'",
    );
  if (!problem && options.check) {
    try {
      await pgbackrest(facts, configFile, ['check']);
    } catch (error) {
      problem = new AthanorError('backup_stale', (error as Error).message, { cause: error });
    }
  }
  return {
    engine: 'pgbackrest',
    ok: problem === undefined,
    configFile,
    oldest: info?.backups[0]?.stoppedAt.toISOString(),
    lastArchivedWal: stats.last_archived_wal ?? undefined,
    lastArchivedAt: stats.last_archived_time?.toISOString(),
    lastFailedWal: stats.last_failed_wal ?? undefined,
    lastFailedAt: stats.last_failed_time?.toISOString(),
    waitingWalFiles: archiver.waiting.n,
    lagMs,
    problem,
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function postgresBinDir(versionNum: number): string {
  const major = Math.floor(versionNum / 10000);
  const candidates = [
    `/usr/lib/postgresql/${major}/bin`,
    ...(processEnvironment().PATH ?? '').split(path.delimiter),
  ];
  const found = candidates.find((dir) => dir && existsSync(path.join(dir, 'pg_ctl')));
  if (!found)
    throw new AthanorError('invalid_config', `pg_ctl of PostgreSQL ${major} is not installed on this host`);
  return found;
}

export interface PgRestoreResult {
  readonly dataDir: string;
  readonly port: number;
  readonly databaseUrl: string;
  readonly restoredTo: string;
  readonly schemaVersion: number;
  readonly rows: number;
  readonly blobs: BlobCheck;
  readonly durationMs: number;
}

/**
 * Restores the archived cluster as it was at `toTime` into a new data directory with pgBackRest
 * (the newest base backup before then, WAL replayed to the time), starts it on `port` with
 * archiving off, waits for it to be promoted, and checks it: migrations, row counts, blobs.
 */
export async function restorePgbackrestToTime(options: {
  readonly config: Pick<
    Config,
    'databaseUrl' | 'pgbackrestConfig' | 'objectsUrl' | 'busyTimeoutMs' | 'backupTarget' | 'dataDir'
  >;
  readonly toTime: Date;
  readonly dataDir: string;
  readonly port?: number;
}): Promise<PgRestoreResult> {
  const started = performance.now();
  const configFile = options.config.pgbackrestConfig;
  if (!existsSync(configFile)) {
    throw new AthanorError(
      'invalid_argument',
      `there is no pgBackRest configuration at ${configFile} (ATHANOR_PGBACKREST_CONFIG): run 'athanor backup pitr setup' first`,
    );
  }
  const dataDir = path.resolve(options.dataDir);
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new AthanorError(
      'target_not_empty',
      `--pg-data ${dataDir} is not empty: give a new directory for the restored cluster`,
    );
  }
  const facts = await clusterFacts(options.config.databaseUrl);
  const info = await repositoryInfo(facts, configFile);
  const oldest = info.backups[0];
  // pgBackRest keeps a backup's stop time in whole seconds and needs it before the target's whole
  // second: a target within the second a backup stopped has no backup set to start from.
  if (!oldest || Math.floor(options.toTime.getTime() / 1000) <= oldest.stoppedAt.getTime() / 1000) {
    throw new AthanorError(
      'invalid_argument',
      `--to-time ${options.toTime.toISOString()} is before the oldest base backup in the repository ` +
        `(${oldest ? oldest.stoppedAt.toISOString() : 'none'}): pick a later time`,
    );
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (facts.runAs) {
    const { uid, gid } = statSync(facts.dataDirectory);
    chownSync(dataDir, uid, gid);
  }
  await pgbackrest(facts, configFile, [
    'restore',
    `--pg1-path=${dataDir}`,
    '--type=time',
    `--target=${options.toTime.toISOString().replace('T', ' ').replace('Z', '+00')}`,
    '--target-action=promote',
    '--archive-mode=off',
  ]);
  const port = options.port ?? (await freePort());
  const binDir = postgresBinDir(facts.serverVersionNum);
  const pgCtl = path.join(binDir, 'pg_ctl');
  const socketDir = dataDir;
  const ctlArgs = [
    '-D',
    dataDir,
    '-l',
    path.join(dataDir, 'restore.log'),
    '-w',
    '-t',
    '300',
    '-o',
    `-p ${port} -c unix_socket_directories=${socketDir} -c archive_mode=off`,
    'start',
  ];
  const [file, argv] = facts.runAs
    ? ['runuser', ['-u', facts.runAs, '--', pgCtl, ...ctlArgs]]
    : [pgCtl, ctlArgs];
  try {
    await run(file, argv);
  } catch (cause) {
    throw new AthanorError(
      'internal',
      `the restored cluster in ${dataDir} did not start: see ${path.join(dataDir, 'restore.log')}`,
      { cause },
    );
  }
  const source = new URL(options.config.databaseUrl);
  source.port = String(port);
  source.hostname = '127.0.0.1';
  const databaseUrl = source.toString();
  const deadline = Date.now() + 300_000;
  for (;;) {
    const inRecovery = await withClient(
      databaseUrl,
      async (c) => (await c.query('SELECT pg_is_in_recovery() AS r')).rows[0] as { r: boolean },
    );
    if (!inRecovery.r) break;
    if (Date.now() > deadline)
      throw new AthanorError(
        'timed_out',
        `the restored cluster in ${dataDir} is still recovering after 5 minutes`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const counted = await withClient(databaseUrl, async (client) => {
    const version = (await client.query('SELECT coalesce(max(id), 0)::int AS v FROM athanor_migrations'))
      .rows[0] as { v: number };
    const tables = (
      await client.query(
        'SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename',
      )
    ).rows as { tablename: string }[];
    let rows = 0;
    for (const t of tables)
      rows += (
        (await client.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(t.tablename)}`))
          .rows[0] as { n: number }
      ).n;
    return { schemaVersion: version.v, rows };
  });
  const target = BackupTarget.open(chooseBackupTarget(options.config));
  const blobs = await restoreReferencedBlobs({
    config: { databaseUrl, busyTimeoutMs: options.config.busyTimeoutMs },
    objects: openObjectStore(options.config.objectsUrl),
    target,
    keys: { identities: [], passphrases: [] },
  });
  return {
    dataDir,
    port,
    databaseUrl: redactUrl(databaseUrl),
    restoredTo: options.toTime.toISOString(),
    ...counted,
    blobs,
    durationMs: Math.round(performance.now() - started),
  };
}
