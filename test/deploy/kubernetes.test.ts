import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { requireTools, run } from './tools.js';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // The rest is checked against the Kubernetes schemas, then read through these loose types.
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
}

async function render(dir: string): Promise<Manifest[]> {
  const result = await run('kubectl', ['kustomize', dir]);
  expect(result.code, result.stderr).toBe(0);
  return parseAllDocuments(result.stdout).map((doc) => doc.toJS() as Manifest);
}

/** The kubernetes-models class for a manifest, whose validate() applies the API's JSON schema. */
async function validateManifest(manifest: Manifest): Promise<void> {
  const [group, version] = manifest.apiVersion.includes('/')
    ? manifest.apiVersion.split('/')
    : [undefined, manifest.apiVersion];
  const modulePath = group
    ? `kubernetes-models/${group}/${version}/${manifest.kind}`
    : `kubernetes-models/${version}/${manifest.kind}`;
  const module = (await import(modulePath)) as Record<string, new (value: unknown) => { validate(): void }>;
  const Model = module[manifest.kind];
  if (!Model) throw new Error(`no schema for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(manifest).validate();
}

const byKind = (manifests: Manifest[], kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`${kind}/${name} is not in the rendered manifests`);
  return found;
};

describe.skipIf(!requireTools('rendering the Kubernetes manifests', ['kubectl']))('deploy/kubernetes', () => {
  it('renders the base and the production overlay into objects the Kubernetes schemas accept', async () => {
    for (const dir of ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/production']) {
      const manifests = await render(dir);
      expect(manifests.length).toBeGreaterThan(5);
      for (const manifest of manifests) await validateManifest(manifest);
    }
  });

  it('rejects a manifest the schema forbids, so the check above can fail', async () => {
    const [deployment] = (await render('deploy/kubernetes/base')).filter((m) => m.kind === 'Deployment');
    const broken = structuredClone(deployment!);
    broken.spec.replicas = 'two';
    await expect(validateManifest(broken)).rejects.toThrow(/replicas/);
    const unknownField = structuredClone(deployment!);
    unknownField.spec.template.spec.containers[0].readinessProbe.httpGet.port = { name: 'http' };
    await expect(validateManifest(unknownField)).rejects.toThrow();
  });

  it('runs two or more API replicas that drain before they stop, behind a PDB, TLS and probes', async () => {
    for (const dir of ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/production']) {
      const manifests = await render(dir);
      const api = byKind(manifests, 'Deployment', 'athanor-api');
      expect(api.spec.replicas).toBeGreaterThanOrEqual(2);
      expect(api.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
      const pod = api.spec.template.spec;
      const container = pod.containers[0];
      expect(container.args).toEqual(['serve', '--api', 'all']);
      expect(container.readinessProbe.httpGet.path).toBe('/readyz');
      expect(container.livenessProbe.httpGet.path).toBe('/healthz');
      const preStopSeconds = Number(container.lifecycle.preStop.exec.command[1]);
      expect(preStopSeconds).toBeGreaterThan(0);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopSeconds + 15);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(container.securityContext.readOnlyRootFilesystem).toBe(true);

      const pdb = byKind(manifests, 'PodDisruptionBudget', 'athanor-api');
      expect(pdb.spec.selector.matchLabels).toEqual(api.spec.selector.matchLabels);
      const service = byKind(manifests, 'Service', 'athanor-api');
      expect(service.spec.selector).toEqual(api.spec.selector.matchLabels);

      const ingress = byKind(manifests, 'Ingress', 'athanor');
      expect(ingress.metadata.annotations?.['cert-manager.io/cluster-issuer']).toBeTruthy();
      expect(ingress.spec.tls[0].hosts).toEqual([ingress.spec.rules[0].host]);
      expect(ingress.spec.rules[0].http.paths[0].backend.service.name).toBe(service.metadata.name);

      const migrate = byKind(manifests, 'Job', 'athanor-migrate');
      expect(migrate.spec.template.spec.containers[0].args).toEqual(['database', 'migrate']);
      expect(migrate.metadata.labels?.['app.kubernetes.io/component']).toBe('migrate');
      const backup = byKind(manifests, 'Deployment', 'athanor-backup');
      expect(backup.spec.template.spec.containers[0].args).toEqual(['backup', 'schedule']);
      expect(backup.spec.strategy.type).toBe('Recreate');
      const compute = byKind(manifests, 'Deployment', 'athanor-compute');
      expect(compute.spec.template.spec.containers[0].args.slice(0, 2)).toEqual(['compute', 'run']);

      // One image for every component, so a roll changes them together.
      const images = new Set(
        manifests
          .filter((m) => m.kind === 'Deployment' || m.kind === 'Job')
          .flatMap((m) => m.spec.template.spec.containers.map((c: { image: string }) => c.image)),
      );
      expect(images.size).toBe(1);
    }
  });

  it('references every secret by name and inlines none', async () => {
    for (const dir of ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/production']) {
      const manifests = await render(dir);
      expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
      const config = manifests.find(
        (m) => m.kind === 'ConfigMap' && m.metadata.name.startsWith('athanor-config'),
      )!;
      for (const [name, value] of Object.entries(config.data ?? {})) {
        expect(name, 'a secret in the ConfigMap').not.toMatch(/PASSWORD|SECRET(?!_FILE)|KEY(?!_FILE)|TOKEN/);
        expect(value, name).not.toMatch(/:\/\/[^/@]*:[^/@]*@/);
      }
      // Workloads name the Secrets they mount; every env value that looks secret is a reference.
      for (const workload of manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'Job')) {
        const pod = workload.spec.template.spec;
        for (const container of pod.containers) {
          for (const env of container.env ?? []) {
            if (/PASSWORD|SECRET$|KEY$|RECIPIENTS/.test(env.name)) {
              expect(env.value, `${workload.metadata.name} ${env.name}`).toBeUndefined();
            }
          }
        }
      }
      const api = byKind(manifests, 'Deployment', 'athanor-api');
      const secretNames = api.spec.template.spec.volumes
        .filter((v: { secret?: unknown }) => v.secret)
        .map((v: { secret: { secretName: string } }) => v.secret.secretName);
      expect(secretNames).toEqual(['athanor']);
      expect(config.data?.ATHANOR_DATABASE_URL_FILE).toMatch(/^\/run\/secrets\/athanor\//);
    }
  });

  it('puts production in its own namespace with its own image, host and replica count', async () => {
    const manifests = await render('deploy/kubernetes/overlays/production');
    const namespaced = manifests.filter((m) => m.kind !== 'Namespace');
    expect(new Set(namespaced.map((m) => m.metadata.namespace))).toEqual(new Set(['athanor']));
    const api = byKind(manifests, 'Deployment', 'athanor-api');
    expect(api.spec.replicas).toBe(3);
    expect(api.spec.template.spec.containers[0].image).toMatch(/^[^:]+\/athanor:\d+\.\d+\.\d+/);
    const base = byKind(await render('deploy/kubernetes/base'), 'Deployment', 'athanor-api');
    expect(api.spec.template.spec.containers[0].image).not.toBe(base.spec.template.spec.containers[0].image);
  });
});
