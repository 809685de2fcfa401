/* eslint-disable @typescript-eslint/no-explicit-any -- manifests arrive as JSON of any shape; the schema check is what types them */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import path from 'node:path';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { afterAll } from 'vitest';
import { tempDir } from './backends.js';
import { cliPath } from './cli.js';

interface FakeJob {
  readonly manifest: Record<string, any>;
  readonly child: ChildProcess;
  readonly startTime: string;
  exitCode: number | null | undefined;
}

export interface FakeKubernetes {
  readonly url: string;
  /** A kubeconfig file pointing at it (`KUBECONFIG`). */
  readonly kubeconfig: string;
  /** Every Job body it was sent, as sent. */
  readonly created: Record<string, any>[];
  /** Jobs whose process runs now. */
  running(): number;
  close(): Promise<void>;
}

/**
 * A loopback stand-in for the batch/v1 Jobs API (create, list by label selector, delete) that
 * checks each Job against the API's schema (kubernetes-models) and runs its `compute` container
 * as a local `athanor` process: the container's args, its env (secretKeyRef from `secrets`), and
 * its secret volumes written to a directory that replaces the mount path in env values.
 */
export async function startFakeKubernetes(
  secrets: Record<string, Record<string, string>>,
): Promise<FakeKubernetes> {
  const jobs = new Map<string, FakeJob>();
  const created: Record<string, any>[] = [];
  const root = tempDir('athanor-fake-kube-');
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const failure = (res: ServerResponse, status: number, reason: string, message: string) =>
    send(res, status, { apiVersion: 'v1', kind: 'Status', status: 'Failure', reason, message, code: status });
  const view = (job: FakeJob) => {
    const status: Record<string, unknown> = { startTime: job.startTime };
    if (job.exitCode === undefined) status.active = 1;
    else if (job.exitCode === 0)
      Object.assign(status, { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] });
    else Object.assign(status, { failed: 1, conditions: [{ type: 'Failed', status: 'True' }] });
    return { ...job.manifest, status };
  };

  const run = (manifest: Record<string, any>) => {
    const name = manifest.metadata.name as string;
    const pod = manifest.spec.template.spec;
    const container = pod.containers.find((c: any) => c.name === 'compute') ?? pod.containers[0];
    const mounts = new Map<string, string>();
    for (const mount of container.volumeMounts ?? []) {
      const volume = (pod.volumes ?? []).find((v: any) => v.name === mount.name);
      if (!volume?.secret) continue;
      const dir = path.join(root, name, mount.name);
      mkdirSync(dir, { recursive: true });
      for (const [key, value] of Object.entries(secrets[volume.secret.secretName] ?? {}))
        writeFileSync(path.join(dir, key), value);
      mounts.set(mount.mountPath, dir);
    }
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: root };
    for (const e of container.env ?? []) {
      let value: string =
        e.value ??
        (e.valueFrom?.secretKeyRef
          ? (secrets[e.valueFrom.secretKeyRef.name]?.[e.valueFrom.secretKeyRef.key] ?? '')
          : '');
      for (const [mountPath, dir] of mounts)
        if (value.startsWith(mountPath)) value = dir + value.slice(mountPath.length);
      env[e.name] = value;
    }
    const log = openSync(path.join(root, `${name}.log`), 'a');
    const child = spawn(process.execPath, [cliPath, ...(container.args ?? [])], {
      env,
      stdio: ['ignore', log, log],
    });
    const job: FakeJob = { manifest, child, startTime: new Date().toISOString(), exitCode: undefined };
    child.on('exit', (code) => (job.exitCode = code ?? 1));
    jobs.set(name, job);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const match = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+))?$/.exec(url.pathname);
    if (!match) return failure(res, 404, 'NotFound', `no route ${req.method} ${url.pathname}`);
    const [, namespace, name] = match;
    if (req.method === 'POST' && !name) {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, any>;
      try {
        new Job(body as any).validate();
      } catch (error) {
        return failure(res, 422, 'Invalid', `Job is invalid: ${(error as Error).message}`);
      }
      if (body.metadata?.namespace && body.metadata.namespace !== namespace)
        return failure(
          res,
          400,
          'BadRequest',
          'the namespace of the object does not match the namespace on the request',
        );
      if (jobs.has(body.metadata.name))
        return failure(res, 409, 'AlreadyExists', `jobs.batch "${body.metadata.name}" already exists`);
      created.push(body);
      run({
        ...body,
        metadata: { ...body.metadata, namespace, creationTimestamp: new Date().toISOString() },
      });
      return send(res, 201, view(jobs.get(body.metadata.name)!));
    }
    if (req.method === 'GET' && !name) {
      const selector = (url.searchParams.get('labelSelector') ?? '')
        .split(',')
        .filter(Boolean)
        .map((term) => term.split('=') as [string, string]);
      const items = [...jobs.values()]
        .filter((j) => j.manifest.metadata.namespace === namespace)
        .filter((j) => selector.every(([k, v]) => j.manifest.metadata.labels?.[k] === v))
        .map(view);
      return send(res, 200, { apiVersion: 'batch/v1', kind: 'JobList', metadata: {}, items });
    }
    if (req.method === 'DELETE' && name) {
      const job = jobs.get(name);
      if (!job) return failure(res, 404, 'NotFound', `jobs.batch "${name}" not found`);
      if (job.exitCode === undefined) job.child.kill('SIGTERM');
      jobs.delete(name);
      return send(res, 200, { apiVersion: 'v1', kind: 'Status', status: 'Success' });
    }
    return failure(res, 405, 'MethodNotAllowed', `${req.method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => failure(res, 500, 'InternalError', String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const kubeconfig = path.join(root, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{ name: fake, cluster: { server: '${url}', insecure-skip-tls-verify: true } }]
users: [{ name: tester, user: { token: fake-token } }]
contexts: [{ name: fake, context: { cluster: fake, user: tester, namespace: athanor } }]
current-context: fake
`,
  );
  const close = async () => {
    for (const job of jobs.values()) if (job.exitCode === undefined) job.child.kill('SIGKILL');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  afterAll(close);
  return {
    url,
    kubeconfig,
    created,
    running: () => [...jobs.values()].filter((j) => j.exitCode === undefined).length,
    close,
  };
}
