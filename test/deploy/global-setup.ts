import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgresCluster } from '../helpers/postgres-cluster.js';
import { podmanGlobal, podmanLimits, repoRoot, requireTools } from './tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The image built from the Containerfile; empty when podman is missing. */
    athanorImage: string;
    /** The base image it was built on. */
    athanorBaseImage: string;
    /** Admin URL of a throwaway PostgreSQL cluster; empty when PostgreSQL is missing. */
    deployPostgresUrl: string;
  }
}

/**
 * Builds the image once for every deploy test: a base made here from Debian's archive and the
 * npm registry (no image registry is needed), then the Containerfile on top of it. Set
 * ATHANOR_TEST_BASE_IMAGE to reuse a base image already present, and ATHANOR_TEST_IMAGE as well
 * to reuse an image built from it.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const stops: (() => void)[] = [];
  project.provide('athanorImage', '');
  project.provide('athanorBaseImage', '');
  project.provide('deployPostgresUrl', '');

  const cluster = await startPostgresCluster();
  if ('unavailable' in cluster) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL is needed: ${cluster.unavailable}`);
  } else {
    project.provide('deployPostgresUrl', cluster.url);
    stops.push(() => cluster.stop());
  }

  if (!requireTools('building and running the image', ['podman', 'runc', 'debootstrap'])) {
    return () => stops.forEach((stop) => stop());
  }
  const version = (
    JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
  ).version;
  const revision = gitRevision();
  let base = process.env.ATHANOR_TEST_BASE_IMAGE ?? '';
  const log = (message: string) => process.stderr.write(`[deploy] ${message}\n`);
  if (!base) {
    const started = Date.now();
    base = execFileSync(
      'bash',
      [path.join(repoRoot, 'deploy/make-base-image.sh'), 'localhost/athanor-base:test'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
      .trim()
      .split('\n')
      .pop() as string;
    log(`base image ${base} made in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  if (process.env.ATHANOR_TEST_IMAGE) {
    // An image built already (with its base named in ATHANOR_TEST_BASE_IMAGE): reuse it.
    project.provide('athanorImage', process.env.ATHANOR_TEST_IMAGE);
    project.provide('athanorBaseImage', base);
    return () => stops.forEach((stop) => stop());
  }
  const image = `localhost/athanor:test-${revision.slice(0, 12)}`;
  const started = Date.now();
  // The machine's CA bundle reaches npm inside the build as a secret (never a layer), for
  // registries behind a TLS-inspecting proxy.
  const caBundle = [process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt'].find(
    (file): file is string => !!file && existsSync(file),
  );
  const build = spawnSync(
    'podman',
    [
      ...podmanGlobal,
      'build',
      '--format',
      'docker',
      '--network',
      'host',
      ...podmanLimits,
      '--build-arg',
      `BASE_IMAGE=${base}`,
      '--build-arg',
      `VERSION=${version}`,
      '--build-arg',
      `REVISION=${revision}`,
      ...(caBundle ? ['--secret', `id=build_ca,src=${caBundle}`] : []),
      '-f',
      'Containerfile',
      '-t',
      image,
      '.',
    ],
    { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  );
  if (build.status !== 0) {
    const output = `${build.stdout}${build.stderr}`.split('\n').slice(-40).join('\n');
    throw new Error(`podman build failed (exit ${build.status}):\n${output}`);
  }
  log(`image ${image} built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  project.provide('athanorImage', image);
  project.provide('athanorBaseImage', base);
  return () => stops.forEach((stop) => stop());
}

function gitRevision(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
