import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One compute service for a driver to start. */
export interface LaunchRequest {
  /** Unique within its manager; the service registers under it, so manager and server agree. */
  readonly launch: string;
  /** Started to keep min-services running (no `--max-idle`). */
  readonly standing: boolean;
  /** Arguments after `athanor`: `compute run --manager … --launch … --max-idle …`. */
  readonly args: readonly string[];
}

/** A service the driver runs or has queued. */
export interface DriverLaunch {
  readonly launch: string;
  readonly state: 'pending' | 'running';
  readonly startedAtMs: number;
  readonly standing: boolean;
  /** The driver's handle: a process id, a Slurm job id, a Kubernetes Job name. */
  readonly handle: string;
}

/**
 * What a compute manager needs from where services run: start some, list its own, stop one. A
 * driver finds its launches from the scheduler's own records (a state directory, squeue, a label
 * selector), so a restarted manager sees what it started before.
 */
export interface ComputeDriver {
  readonly name: string;
  /** Starts the services; rejects with the scheduler's words when it refuses. */
  start(requests: readonly LaunchRequest[]): Promise<void>;
  list(): Promise<DriverLaunch[]>;
  stop(launch: DriverLaunch): Promise<void>;
}

/** A driver that could not do what it was asked; the message quotes the scheduler. */
export class DriverError extends Error {}

/** How a driver runs this same release of `athanor`: this Node.js and this CLI entry. */
export function athanorCommand(): string[] {
  const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/main.js');
  return [process.execPath, main];
}

/** Job, launch and label names: manager names are free text, schedulers are not. */
export function safeName(text: string, maxLength = 40): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (cleaned || 'manager').slice(0, maxLength).replace(/-+$/, '');
}

/** The job name that carries a launch: `athanor-<manager>-<s|b>-<launch>` (standing or burst). */
export function jobName(manager: string, launch: string, standing: boolean): string {
  return `athanor-${safeName(manager)}-${standing ? 's' : 'b'}-${launch}`;
}

/** The launch and kind a job name carries, when it is one of this manager's. */
export function parseJobName(
  manager: string,
  name: string,
): { launch: string; standing: boolean } | undefined {
  const prefix = `athanor-${safeName(manager)}-`;
  if (!name.startsWith(prefix)) return undefined;
  const match = /^([sb])-([a-z0-9]+)$/.exec(name.slice(prefix.length));
  return match ? { launch: match[2]!, standing: match[1] === 's' } : undefined;
}
