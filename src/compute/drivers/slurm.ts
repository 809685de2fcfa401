import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { AthanorError } from '../../domain/errors.js';
import type { ComputeDriver, DriverLaunch, LaunchRequest } from './driver.js';
import { athanorCommand, DriverError, jobName, parseJobName } from './driver.js';

const run = promisify(execFile);

export interface SlurmDriverOptions {
  readonly manager: string;
  /** The batch script template; default `defaultSlurmTemplate`. */
  readonly templateFile?: string | undefined;
  readonly account?: string | undefined;
  readonly partition?: string | undefined;
  /** `--time`, e.g. `4:00:00`. */
  readonly time?: string | undefined;
  readonly gres?: string | undefined;
  /** Further `#SBATCH` options, as written (`--mem=4G`). */
  readonly extraOptions?: readonly string[] | undefined;
  /** Seconds before the time limit at which Slurm sends SIGTERM (`--signal=B:TERM@n`); default 120. */
  readonly signalSeconds?: number | undefined;
  /** How the job runs athanor on the compute node; default this Node.js and this release. */
  readonly command?: readonly string[] | undefined;
  /** Where job output goes (`%j` is the job id); default Slurm's. */
  readonly output?: string | undefined;
  /** Environment of sbatch, which the job inherits (server URL, compute identity and key). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * The default batch script. `{{options}}` becomes the `#SBATCH` lines, `{{command}}` the service's
 * command line; `exec` makes the service the job's main process, so Slurm's signals reach it.
 */
export const defaultSlurmTemplate = `#!/bin/bash
{{options}}
# An Athanor compute service started by compute manager {{manager}}.
exec {{command}}
`;

const placeholders = ['options', 'command', 'manager', 'job_name', 'launch'] as const;

/** Checks a template: only known placeholders, and `{{command}}` present; exit 2 naming the file. */
export function parseSlurmTemplate(text: string, file: string): string {
  const found = [...text.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1]!);
  const unknown = found.filter((name) => !(placeholders as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new AthanorError(
      'invalid_argument',
      `--slurm-template ${file}: unknown placeholder {{${unknown[0]}}}; known: ${placeholders.map((p) => `{{${p}}}`).join(', ')}`,
    );
  }
  if (/\{\{(?![^}]*\}\})/.test(text) || /\{\{\s*\}\}/.test(text)) {
    throw new AthanorError(
      'invalid_argument',
      `--slurm-template ${file}: an unclosed or empty {{ placeholder`,
    );
  }
  if (!found.includes('command')) {
    throw new AthanorError(
      'invalid_argument',
      `--slurm-template ${file}: it never runs the service: put {{command}} where the job should run it`,
    );
  }
  if (!text.startsWith('#!')) {
    throw new AthanorError(
      'invalid_argument',
      `--slurm-template ${file}: a batch script starts with #! (e.g. #!/bin/bash)`,
    );
  }
  return text;
}

export function loadSlurmTemplate(file: string | undefined): string {
  if (!file) return defaultSlurmTemplate;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AthanorError('invalid_argument', `--slurm-template ${file}: ${(error as Error).message}`);
  }
  return parseSlurmTemplate(text, file);
}

const shellQuote = (word: string) =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

/** Slurm's times are local and zone-less (`2026-12-07T23:40:00`); `N/A` or `Unknown` when unset. */
function slurmTime(text: string | undefined): number | undefined {
  if (!text || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(text)) return undefined;
  const ms = new Date(text).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

const runningStates = new Set(['RUNNING', 'COMPLETING', 'CONFIGURING', 'SUSPENDED', 'STAGE_OUT', 'RESIZING']);
const pendingStates = new Set(['PENDING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED']);

/**
 * Services as Slurm jobs: one job per service (so each can be cancelled alone, and a failed one
 * is one failure, not an array's), submitted with `sbatch`, listed with `squeue` (no `sacct`: it
 * needs slurmdbd), cancelled with `scancel`.
 */
export class SlurmDriver implements ComputeDriver {
  readonly name = 'slurm';
  readonly #template: string;

  constructor(private readonly options: SlurmDriverOptions) {
    this.#template = loadSlurmTemplate(options.templateFile);
  }

  /** The batch script of one launch. */
  script(request: LaunchRequest): string {
    const name = jobName(this.options.manager, request.launch, request.standing);
    const o = this.options;
    const lines = [
      `--job-name=${name}`,
      ...(o.account ? [`--account=${o.account}`] : []),
      ...(o.partition ? [`--partition=${o.partition}`] : []),
      ...(o.time ? [`--time=${o.time}`] : []),
      ...(o.gres ? [`--gres=${o.gres}`] : []),
      ...(o.output ? [`--output=${o.output}`] : []),
      `--signal=B:TERM@${o.signalSeconds ?? 120}`,
      ...(o.extraOptions ?? []),
    ].map((option) => `#SBATCH ${option}`);
    const command = [...(o.command ?? athanorCommand()), ...request.args].map(shellQuote).join(' ');
    const values: Record<(typeof placeholders)[number], string> = {
      options: lines.join('\n'),
      command,
      manager: o.manager,
      job_name: name,
      launch: request.launch,
    };
    return this.#template.replace(
      /\{\{\s*([a-z_]+)\s*\}\}/g,
      (_, key: string) => values[key as keyof typeof values],
    );
  }

  async start(requests: readonly LaunchRequest[]): Promise<void> {
    for (const request of requests) {
      const name = jobName(this.options.manager, request.launch, request.standing);
      const { code, stdout, stderr } = await this.#sbatch(name, this.script(request));
      if (code !== 0) {
        throw new DriverError(
          `sbatch exit ${code}: ${(stderr || stdout).trim().slice(0, 500) || 'no output'}`,
        );
      }
      if (!/^\d+/.test(stdout.trim()))
        throw new DriverError(`sbatch answered no job id: ${stdout.trim().slice(0, 200)}`);
    }
  }

  /** Runs sbatch with the script on standard input; `--parsable` answers `jobid[;cluster]`. */
  #sbatch(name: string, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('sbatch', ['--parsable', `--job-name=${name}`], {
        env: { ...this.options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', (error) => reject(new DriverError(`cannot run sbatch: ${error.message}`)));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(script);
    });
  }

  async list(): Promise<DriverLaunch[]> {
    let stdout: string;
    try {
      ({ stdout } = await run('squeue', ['-h', '--me', '-o', '%i|%j|%T|%S|%V'], {
        env: { ...this.options.env },
        maxBuffer: 64 * 1024 * 1024,
      }));
    } catch (error) {
      const e = error as { code?: number | string; stderr?: string; message: string };
      throw new DriverError(`squeue exit ${e.code ?? '?'}: ${(e.stderr ?? e.message).trim().slice(0, 500)}`);
    }
    const launches: DriverLaunch[] = [];
    for (const line of stdout.split('\n')) {
      const [id, name, state, started, submitted] = line.trim().split('|');
      if (!id || !name || !state) continue;
      const mine = parseJobName(this.options.manager, name);
      if (!mine) continue;
      const running = runningStates.has(state);
      if (!running && !pendingStates.has(state)) continue;
      launches.push({
        launch: mine.launch,
        standing: mine.standing,
        state: running ? 'running' : 'pending',
        startedAtMs: (running ? slurmTime(started) : undefined) ?? slurmTime(submitted) ?? Date.now(),
        handle: id,
      });
    }
    return launches;
  }

  async stop(launch: DriverLaunch): Promise<void> {
    try {
      await run('scancel', [launch.handle], { env: { ...this.options.env } });
    } catch (error) {
      const e = error as { code?: number | string; stderr?: string; message: string };
      throw new DriverError(`scancel exit ${e.code ?? '?'}: ${(e.stderr ?? e.message).trim().slice(0, 500)}`);
    }
  }
}
