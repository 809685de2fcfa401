import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1Deployment, V1Job, V1PodTemplateSpec } from '@kubernetes/client-node';
import { BatchV1Api, KubeConfig, loadYaml } from '@kubernetes/client-node';
import { AthanorError } from '../../domain/errors.js';
import type { ComputeDriver, DriverLaunch, LaunchRequest } from './driver.js';
import { DriverError, jobName, parseJobName, safeName } from './driver.js';

/** The compute Deployment of deploy/kubernetes: its pod template is every Job's template. */
export const defaultComputeManifest = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../deploy/kubernetes/base/compute-deployment.yaml',
);

export interface KubernetesDriverOptions {
  readonly manager: string;
  /** The compute identity the services run as (the manager's). */
  readonly identifier: string;
  readonly namespace: string;
  /** A manifest holding a Deployment (or a pod template) whose `compute` container runs the service. */
  readonly manifestFile?: string | undefined;
  /** Overrides the container image (default: the manifest's). */
  readonly image?: string | undefined;
  /** The Secret holding the compute key (default: the manifest's secret volume). */
  readonly secretName?: string | undefined;
  /** The server URL as seen from inside the cluster (default: the manifest's `--url`). */
  readonly serverUrl?: string | undefined;
  /** Where the API server is; default: in-cluster, else `KUBECONFIG` / ~/.kube/config. */
  readonly kubeConfig?: KubeConfig | undefined;
}

const labelPrefix = 'athanor.io';

function loadPodTemplate(file: string): V1PodTemplateSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AthanorError('invalid_argument', `--kube-manifest ${file}: ${(error as Error).message}`);
  }
  let doc: V1Deployment | V1PodTemplateSpec;
  try {
    doc = loadYaml<V1Deployment>(text);
  } catch (error) {
    throw new AthanorError(
      'invalid_argument',
      `--kube-manifest ${file} does not parse: ${(error as Error).message}`,
    );
  }
  const template = (doc as V1Deployment).spec?.template ?? (doc as V1PodTemplateSpec);
  if (!template?.spec?.containers?.length) {
    throw new AthanorError(
      'invalid_argument',
      `--kube-manifest ${file}: no pod template with containers (expected a Deployment like deploy/kubernetes/base/compute-deployment.yaml)`,
    );
  }
  return template;
}

/**
 * Services as Kubernetes Jobs, one per service, rendered from the compute Deployment's pod
 * template. Jobs rather than a Deployment scaled by replicas: a service that ends by itself
 * (`--max-idle`) stays ended instead of being restarted, and scaling in never kills a busy pod
 * chosen by the ReplicaSet; each Job is deleted alone.
 */
export class KubernetesDriver implements ComputeDriver {
  readonly name = 'kubernetes';
  readonly #template: V1PodTemplateSpec;
  readonly #api: BatchV1Api;

  constructor(private readonly options: KubernetesDriverOptions) {
    this.#template = loadPodTemplate(options.manifestFile ?? defaultComputeManifest);
    const config = options.kubeConfig ?? new KubeConfig();
    if (!options.kubeConfig) config.loadFromDefault();
    this.#api = config.makeApiClient(BatchV1Api);
  }

  #selector(): string {
    return `${labelPrefix}/manager=${safeName(this.options.manager, 63)}`;
  }

  /** The Job of one launch. */
  job(request: LaunchRequest): V1Job {
    const name = jobName(this.options.manager, request.launch, request.standing).slice(0, 63);
    const pod = structuredClone(this.#template);
    const spec = pod.spec!;
    const container: V1Container = spec.containers.find((c) => c.name === 'compute') ?? spec.containers[0]!;
    const manifestArgs = container.args ?? [];
    const urlAt = manifestArgs.indexOf('--url');
    const url = this.options.serverUrl ?? (urlAt >= 0 ? manifestArgs[urlAt + 1] : undefined);
    container.args = [...request.args, ...(url ? ['--url', url] : [])];
    if (this.options.image) container.image = this.options.image;
    container.env = [
      ...(container.env ?? []).filter((e) => e.name !== 'ATHANOR_COMPUTE_ID'),
      { name: 'ATHANOR_COMPUTE_ID', value: this.options.identifier },
    ];
    if (this.options.secretName) {
      for (const volume of spec.volumes ?? [])
        if (volume.secret) volume.secret.secretName = this.options.secretName;
    }
    spec.restartPolicy = 'Never';
    const labels = {
      ...(pod.metadata?.labels ?? {}),
      [`${labelPrefix}/manager`]: safeName(this.options.manager, 63),
      [`${labelPrefix}/launch`]: request.launch,
      [`${labelPrefix}/standing`]: String(request.standing),
    };
    pod.metadata = { ...pod.metadata, labels };
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: this.options.namespace, labels },
      spec: { backoffLimit: 0, ttlSecondsAfterFinished: 600, template: pod },
    };
  }

  async start(requests: readonly LaunchRequest[]): Promise<void> {
    for (const request of requests) {
      try {
        await this.#api.createNamespacedJob({ namespace: this.options.namespace, body: this.job(request) });
      } catch (error) {
        throw new DriverError(`creating Job failed: ${apiMessage(error)}`);
      }
    }
  }

  async list(): Promise<DriverLaunch[]> {
    let items: V1Job[];
    try {
      ({ items } = await this.#api.listNamespacedJob({
        namespace: this.options.namespace,
        labelSelector: this.#selector(),
      }));
    } catch (error) {
      throw new DriverError(`listing Jobs failed: ${apiMessage(error)}`);
    }
    const launches: DriverLaunch[] = [];
    for (const job of items) {
      const name = job.metadata?.name ?? '';
      const mine = parseJobName(this.options.manager, name);
      if (!mine || job.metadata?.deletionTimestamp) continue;
      const status = job.status ?? {};
      const finished =
        (status.succeeded ?? 0) > 0 ||
        (status.failed ?? 0) > 0 ||
        (status.conditions ?? []).some(
          (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
        );
      if (finished) continue;
      const started = status.startTime ?? job.metadata?.creationTimestamp;
      launches.push({
        launch: mine.launch,
        standing: mine.standing,
        state: (status.active ?? 0) > 0 ? 'running' : 'pending',
        startedAtMs: started ? new Date(started).getTime() : Date.now(),
        handle: name,
      });
    }
    return launches;
  }

  async stop(launch: DriverLaunch): Promise<void> {
    try {
      await this.#api.deleteNamespacedJob({
        name: launch.handle,
        namespace: this.options.namespace,
        propagationPolicy: 'Background',
      });
    } catch (error) {
      throw new DriverError(`deleting Job ${launch.handle} failed: ${apiMessage(error)}`);
    }
  }
}

function apiMessage(error: unknown): string {
  const e = error as { code?: number; body?: unknown; message?: string };
  const body = typeof e.body === 'string' ? e.body : e.body ? JSON.stringify(e.body) : '';
  let message = body;
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    // not JSON: the text as it came
  }
  return `${e.code ? `HTTP ${e.code}: ` : ''}${message || e.message || String(error)}`.slice(0, 500);
}
