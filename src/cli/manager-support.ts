import { commandOnPath } from '../config/child-env.js';
import type { ManagerView } from '../domain/api-views.js';
import { AthanorError } from '../domain/errors.js';
import type { ManagerRunOptions } from './commands/compute-manager.js';
import { printLine } from './output.js';

/** The driver `compute manager run --driver` names, checked before the manager registers. */
export async function createDriver(
  options: ManagerRunOptions,
  context: { name: string; identifier: string; env: Record<string, string | undefined>; stateDir: string },
) {
  if (options.driver === 'slurm') {
    for (const tool of ['sbatch', 'squeue', 'scancel']) {
      if (!commandOnPath(tool, context.env))
        throw new AthanorError(
          'invalid_argument',
          `--driver slurm needs ${tool} on PATH: run the manager on a Slurm login node (or add Slurm's bin directory to PATH)`,
        );
    }
    const { SlurmDriver } = await import('../compute/drivers/slurm.js');
    return new SlurmDriver({
      manager: context.name,
      templateFile: options.slurmTemplate,
      account: options.slurmAccount,
      partition: options.slurmPartition,
      time: options.slurmTime,
      gres: options.slurmGres,
      extraOptions: options.slurmOption,
      output: options.slurmOutput,
      env: context.env,
    });
  }
  if (options.driver === 'kubernetes') {
    const { KubernetesDriver } = await import('../compute/drivers/kubernetes.js');
    return new KubernetesDriver({
      manager: context.name,
      identifier: context.identifier,
      namespace: options.kubeNamespace,
      manifestFile: options.kubeManifest,
      image: options.kubeImage,
      secretName: options.kubeSecret,
      serverUrl: options.kubeUrl,
    });
  }
  const { LocalDriver } = await import('../compute/drivers/local.js');
  return new LocalDriver({ manager: context.name, stateDir: context.stateDir, env: context.env });
}

/** `compute manager status` for a terminal. */
export function printManager(view: ManagerView): void {
  const limits = `min ${view.minServices}, max ${view.maxServices}${view.cap !== null ? `, capped at ${view.cap}` : ''}`;
  printLine(`manager ${view.name} (${view.id}), identity ${view.identifier}, driver ${view.driver}`);
  printLine(
    `  state ${view.state}${view.paused ? ', paused' : ''}${view.stopRequested ? ', stop requested' : ''}; ${limits}`,
  );
  printLine(
    `  scopes ${view.scopes.join(', ')}; last heartbeat ${view.heartbeatAt} on ${view.hostname ?? '?'}`,
  );
  printLine(`  services (${view.launches.length}):`);
  for (const l of view.launches)
    printLine(`    ${l.launch}  ${l.state}  since ${l.startedAt}  ${l.handle ?? ''}`);
  printLine('  decisions (newest last):');
  for (const d of view.decisions)
    printLine(`    ${d.at}  ${d.action}${d.count ? ` ${d.count}` : ''}: ${d.reason}`);
}
