import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import type { CliProcess } from './backup/processes.js';
import { spawnCli } from './backup/processes.js';
import { until } from '../helpers/until.js';

/** A backup every three seconds: a few slots in a short test, and time for each backup to finish. */
const schedule = '*/3 * * * * *';
/** Slots both servers must have reached before they are stopped. */
const sharedSlots = 3;

const backupIdPattern = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;
const scheduledReason = /^scheduled (\d{8}T\d{6}Z)$/;

/** What one server logged about one backup slot. */
type SlotEvent = 'backup.schedule.backup_done' | 'backup.schedule.not_leader' | 'backup.schedule.failed';
const slotEvents = new Set<string>([
  'backup.schedule.backup_done',
  'backup.schedule.not_leader',
  'backup.schedule.failed',
]);

interface LogLine {
  readonly event?: string;
  readonly slot?: string;
  readonly backupId?: string;
  readonly msg?: string;
}

/** A running `athanor serve` whose log lines (JSON on stdout) the test reads as they come. */
interface Server {
  readonly name: string;
  readonly process: CliProcess;
  stdout: string;
  stderr: string;
}

interface ListedBackup {
  readonly id: string;
  readonly state: string;
  readonly reason?: string;
  readonly problem?: string;
}

interface SlotClaim {
  readonly slot: string;
  readonly pid: number;
  readonly finishedAt?: string;
  readonly outcome?: string;
  readonly backupId?: string;
}

const running: Server[] = [];

afterEach(async () => {
  // Whatever the test did, no server outlives it.
  const left = running.splice(0);
  for (const server of left) {
    const { child } = server.process;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all(left.map((server) => server.process.exited));
});

function startServer(name: string, env: Record<string, string>): Server {
  const cli = spawnCli(['serve', '--host', '127.0.0.1', '--port', '0'], env);
  const server: Server = { name, process: cli, stdout: '', stderr: '' };
  running.push(server);
  cli.child.stdout.on('data', (chunk: Buffer) => (server.stdout += chunk.toString()));
  cli.child.stderr.on('data', (chunk: Buffer) => (server.stderr += chunk.toString()));
  return server;
}

/** The complete JSON lines a server logged. */
function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Per slot, what a server logged about it (in order; one event per slot unless something is wrong). */
function slotLog(server: Server): Map<string, SlotEvent[]> {
  const bySlot = new Map<string, SlotEvent[]>();
  for (const line of logLines(server.stdout)) {
    if (!line.event || !slotEvents.has(line.event) || !line.slot) continue;
    bySlot.set(line.slot, [...(bySlot.get(line.slot) ?? []), line.event as SlotEvent]);
  }
  return bySlot;
}

function slotsSeenByBoth(a: Server, b: Server): string[] {
  const seenByB = slotLog(b);
  return [...slotLog(a).keys()].filter((slot) => seenByB.has(slot));
}

function servingUrl(server: Server): string | undefined {
  return /athanor serving .* on (http:\/\/\S+)/.exec(server.stderr)?.[1];
}

async function isReady(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

describeEachBackend('two athanor serve processes on one database and one backup target', (backend) => {
  const dir = tempDir();

  it('run exactly one backup per scheduled slot, and every backup is complete', async () => {
    const databaseUrl = await freshDatabaseUrl(backend, dir);
    const init = await runCli(['database', 'init'], {
      env: { ATHANOR_DATABASE_URL: databaseUrl, ATHANOR_DATA_DIR: path.join(dir, 'cli') },
    });
    expect(init.code, init.stderr).toBe(0);

    const targetDir = path.join(dir, `backups-${backend}`);
    const target = `file:${targetDir}`;
    const envFor = (name: string): Record<string, string> => ({
      ATHANOR_DATABASE_URL: databaseUrl,
      ATHANOR_DATA_DIR: path.join(dir, `${backend}-${name}`),
      ATHANOR_BACKUP_TARGET: target,
      ATHANOR_BACKUP_SCHEDULE: schedule,
      ATHANOR_BACKUP_DRILL_SCHEDULE: 'off',
      // No prune: every backup the servers took must still be there to be counted.
      ATHANOR_BACKUP_KEEP: 'off',
      ATHANOR_LOG_LEVEL: 'info',
    });
    const servers = [startServer('a', envFor('a')), startServer('b', envFor('b'))] as const;
    const [a, b] = servers;

    await until('both servers listening', () => servers.every((s) => servingUrl(s) !== undefined), 20_000, 5);
    const urls = servers.map((s) => servingUrl(s) as string);
    expect(new Set(urls).size, 'two different ports').toBe(2);
    for (const url of urls) await until(`${url}/readyz`, () => isReady(url), 10_000, 5);

    // Both servers must have contended for the same slots, or the test would prove nothing.
    await until(
      `${sharedSlots} slots reached by both servers`,
      () => slotsSeenByBoth(a, b).length >= sharedSlots,
      25_000,
      5,
    );
    for (const server of servers) server.process.child.kill('SIGTERM');
    const exits = await Promise.all(servers.map((s) => s.process.exited));
    for (const [i, exit] of exits.entries()) {
      expect({ server: servers[i]?.name, code: exit.code, signal: exit.signal }, exit.stderr).toEqual({
        server: servers[i]?.name,
        code: 0,
        signal: null,
      });
      // A stop waits for the run in progress: the scheduler reports it stopped.
      expect(
        logLines(exit.stdout).map((l) => l.event),
        `server ${servers[i]?.name}`,
      ).toContain('backup.schedule.stopped');
    }

    // What each server says it did: for every slot, one server backed up and the other stood by.
    const logs = servers.map((s) => slotLog(s));
    const failures = servers.flatMap((s) =>
      logLines(s.stdout)
        .filter((l) => l.event === 'backup.schedule.failed')
        .map((l) => `${s.name}: ${l.msg}`),
    );
    expect(failures, 'failed scheduled runs').toEqual([]);
    const slots = new Set(logs.flatMap((log) => [...log.keys()]));
    for (const slot of slots) {
      const ran = logs.flatMap((log) =>
        (log.get(slot) ?? []).filter((event) => event === 'backup.schedule.backup_done'),
      );
      expect(ran, `servers that backed up slot ${slot}`).toHaveLength(1);
    }

    // What the target holds, as an operator lists it.
    const list = await runCli(['backup', 'list', '--json', '--target', target], {
      env: { ATHANOR_DATABASE_URL: databaseUrl, ATHANOR_DATA_DIR: path.join(dir, 'cli') },
    });
    expect(list.code, list.stderr).toBe(0);
    const backups = JSON.parse(list.stdout) as ListedBackup[];
    expect(backups.length).toBeGreaterThanOrEqual(2);
    for (const backup of backups) {
      expect({ id: backup.id, state: backup.state, problem: backup.problem }).toEqual({
        id: backup.id,
        state: 'complete',
        problem: undefined,
      });
    }
    const backupSlots = backups.map((backup) => {
      const slot = scheduledReason.exec(backup.reason ?? '')?.[1];
      expect(slot, `reason of backup ${backup.id}: '${backup.reason}'`).toBeDefined();
      return slot as string;
    });
    const backupsBySlot = new Map<string, string[]>();
    for (const [i, slot] of backupSlots.entries()) {
      backupsBySlot.set(slot, [...(backupsBySlot.get(slot) ?? []), backups[i]?.id ?? '']);
    }
    const duplicated = [...backupsBySlot].filter(([, ids]) => ids.length > 1);
    expect(duplicated, 'slots backed up more than once').toEqual([]);
    // Every slot a server reports having backed up is one backup at the target, and nothing else is.
    const ranSlots = logs.flatMap((log) =>
      [...log].filter(([, events]) => events.includes('backup.schedule.backup_done')).map(([slot]) => slot),
    );
    expect([...backupSlots].sort()).toEqual(ranSlots.sort());

    // No half-written backup directory is left beside the listed ones.
    const directories = readdirSync(targetDir).filter((name) => backupIdPattern.test(name));
    for (const id of directories) {
      expect(existsSync(path.join(targetDir, id, 'manifest.json')), `${id}/manifest.json`).toBe(true);
    }
    expect(directories.sort()).toEqual(backups.map((backup) => backup.id).sort());

    // The slot claims at the target: one per slot, finished, naming the backup it produced.
    const claimsDir = path.join(targetDir, 'schedule', 'slots', 'backup');
    const claims = new Map(
      readdirSync(claimsDir).map((name) => [
        name,
        JSON.parse(readFileSync(path.join(claimsDir, name), 'utf8')) as SlotClaim,
      ]),
    );
    for (const [i, backup] of backups.entries()) {
      const claim = claims.get(backupSlots[i] ?? '');
      expect(claim, `claim of slot ${backupSlots[i]}`).toMatchObject({ outcome: 'ok', backupId: backup.id });
      expect(claim?.finishedAt).toBeDefined();
    }
    expect([...claims.keys()].sort()).toEqual([...backupSlots].sort());
    // Each claim names the process that ran its slot: one of the two servers.
    const pids = new Set(servers.map((s) => s.process.child.pid));
    for (const claim of claims.values()) expect(pids).toContain(claim.pid);
  });
});
