import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { until } from '../helpers/until.js';
import { startFakeKubernetes } from '../helpers/fake-kubernetes.js';
import { completedOnce, sampler, startManager } from '../helpers/manager.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const timings = { leaseTtlMs: 4_000, registrationTtlMs: 8_000, sweepIntervalMs: 500 };
const manifest = path.resolve(import.meta.dirname, '../../deploy/kubernetes/base/compute-deployment.yaml');

describe('compute manager, Kubernetes driver against a loopback batch/v1 Jobs API', () => {
  const dir = tempDir();

  it(
    'runs one Job per service rendered from deploy/kubernetes, key from the Secret, within max-services',
    { timeout: 150_000 },
    async () => {
      const server = await startTestServer('sqlite', dir, timings);
      const { user, computeCredentials } = await queueClients(server, 'org-camp-*');
      const { tasks } = await networkWithTasks(user, {
        count: 10,
        protocol: 'sleep',
        inputs: () => ({ seconds: 0.3 }),
      });
      const kube = await startFakeKubernetes({ 'athanor-compute': { key: computeCredentials.key } });
      const jobs = sampler(() => kube.running());
      const manager = startManager(
        computeCredentials,
        [
          '--driver',
          'kubernetes',
          '--name',
          'kube',
          '--max-services',
          '2',
          '--idle-timeout',
          '3s',
          '--interval',
          '1s',
          '--kube-namespace',
          'athanor',
          '--kube-url',
          server.url,
          '--kube-manifest',
          manifest,
        ],
        { KUBECONFIG: kube.kubeconfig },
      );
      await until(
        'the condition at line 51',
        async () => (await completedOnce(server.store, tasks)).complete === 10,
        90_000,
      ).catch((error: unknown) => {
        throw new Error(`tasks not done; the manager said:\n${manager.stderr().slice(-3000)}`, {
          cause: error,
        });
      });
      await until('the condition at line 58', () => kube.running() === 0, 30_000);
      await jobs.stop();
      expect(await completedOnce(server.store, tasks)).toEqual({ complete: 10, okOnce: 10, okTwice: 0 });
      expect(jobs.max).toBeLessThanOrEqual(2);
      expect(kube.created.length).toBeGreaterThanOrEqual(1);
      const job = kube.created[0]!;
      // Rendered from the compute Deployment: its security context and secret volume, a Job's policy.
      expect(job).toMatchObject({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { labels: { 'athanor.io/manager': 'kube', 'app.kubernetes.io/component': 'compute' } },
        spec: {
          backoffLimit: 0,
          template: { spec: { restartPolicy: 'Never', securityContext: { runAsNonRoot: true } } },
        },
      });
      const container = job.spec.template.spec.containers[0];
      expect(container.args).toEqual(
        expect.arrayContaining(['compute', 'run', '--manager', '--max-idle', '1.5s', '--url', server.url]),
      );
      expect(container.env).toEqual(
        expect.arrayContaining([
          { name: 'ATHANOR_COMPUTE_KEY_FILE', value: '/run/secrets/athanor-compute/key' },
          { name: 'ATHANOR_COMPUTE_ID', value: computeCredentials.identifier },
        ]),
      );
      expect(JSON.stringify(job)).not.toContain(computeCredentials.key);
      manager.child.kill('SIGTERM');
      expect((await manager.done).code).toBe(0);
    },
  );
});
