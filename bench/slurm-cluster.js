// A single-node Slurm for the manager bench, as test/helpers/slurm-cluster.ts starts it for the tests.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
const tempDir = (prefix) => mkdtempSync(path.join(os.tmpdir(), prefix));
/** Why a real Slurm cannot run here, or undefined when it can (Debian: slurm-wlm and munge, as root). */
export function slurmMissing() {
  for (const binary of ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged']) {
    if (!existsSync(binary)) return `${binary} is missing (apt-get install slurm-wlm munge)`;
  }
  if (process.getuid?.() !== 0) return 'slurmd must run as root';
  return undefined;
}
const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
    server.on('error', reject);
  });
const pidOf = (file) => {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
};
/**
 * A single-node Slurm (slurmctld + slurmd on this host, munge for authentication, no slurmdbd),
 * with its configuration, spool and pid files in a temporary directory and free ports, so it
 * touches no system Slurm. `stop()` ends the daemons it started by their pids.
 */
export async function startSlurmCluster() {
  const root = tempDir('athanor-slurm-');
  const started = [];
  // munge: the host's key and socket, started when not already running.
  for (const dir of ['/etc/munge', '/run/munge', '/var/lib/munge', '/var/log/munge'])
    mkdirSync(dir, { recursive: true });
  if (!existsSync('/etc/munge/munge.key'))
    writeFileSync('/etc/munge/munge.key', execFileSync('head', ['-c', '1024', '/dev/urandom']));
  execFileSync('chown', [
    '-R',
    'munge:munge',
    '/etc/munge',
    '/run/munge',
    '/var/lib/munge',
    '/var/log/munge',
  ]);
  execFileSync('chmod', ['400', '/etc/munge/munge.key']);
  const mungeRuns = spawnSync('sh', ['-c', 'munge -n | unmunge'], { stdio: 'ignore' }).status === 0;
  if (!mungeRuns) {
    execFileSync('runuser', ['-u', 'munge', '--', '/usr/sbin/munged']);
    const pid = pidOf('/run/munge/munged.pid');
    if (pid) started.push(pid);
  }
  const host = os.hostname().split('.')[0];
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  for (const dir of ['spool-ctld', 'spool-d', 'log']) mkdirSync(path.join(root, dir), { recursive: true });
  const conf = path.join(root, 'slurm.conf');
  writeFileSync(
    conf,
    `ClusterName=athanortest
SlurmctldHost=${host}
SlurmctldPort=${ctldPort}
SlurmdPort=${dPort}
SlurmUser=root
StateSaveLocation=${root}/spool-ctld
SlurmdSpoolDir=${root}/spool-d
SlurmctldPidFile=${root}/slurmctld.pid
SlurmdPidFile=${root}/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SchedulerParameters=sched_interval=2
KillWait=10
SlurmctldLogFile=${root}/log/slurmctld.log
SlurmdLogFile=${root}/log/slurmd.log
NodeName=${host} CPUs=${Math.max(2, os.cpus().length)} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
`,
  );
  const env = { SLURM_CONF: conf };
  const stop = () => {
    for (const file of ['slurmd.pid', 'slurmctld.pid']) {
      const pid = pidOf(path.join(root, file));
      if (pid) started.push(pid);
    }
    for (const pid of started.reverse()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  try {
    execFileSync('/usr/sbin/slurmctld', ['-i'], { env: { ...process.env, ...env } });
    execFileSync('/usr/sbin/slurmd', [], { env: { ...process.env, ...env } });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = spawnSync('sinfo', ['-h', '-o', '%T'], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
      if (info.status === 0 && /idle|mixed|allocated/.test(info.stdout)) break;
      if (Date.now() > deadline)
        throw new Error(
          `slurm did not come up: ${info.stdout}${info.stderr}\n${readFileSync(path.join(root, 'log/slurmctld.log'), 'utf8').slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (error) {
    stop();
    throw error;
  }
  return { env, stop };
}
