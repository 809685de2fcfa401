import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../helpers/postgres-cluster.js';
import { runCli } from '../helpers/cli.js';
import { startS3Peer, type S3Peer } from '../helpers/s3-peer.js';
import { podman, podmanLimits, repoRoot, requireTools, run } from './tools.js';
import { until } from '../helpers/until.js';

const composeFile = path.join(repoRoot, 'deploy/compose.yaml');
const makeSecrets = path.join(repoRoot, 'deploy/compose/make-secrets.sh');

interface Service {
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | null>;
  secrets?: ({ source: string } | string)[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { disable?: boolean; test?: string[] };
  ports?: unknown[];
  volumes?: unknown[];
}
interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}

/** The compose file as docker-compose itself reads it: interpolated, anchors merged, checked. */
async function composeConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Compose> {
  const result = await run('docker-compose', ['-f', file, 'config'], { env });
  if (result.code !== 0) throw new Error(`docker-compose config refused ${file}: ${result.stderr}`);
  return parse(result.stdout) as Compose;
}

const secretNames = (service: Service) =>
  (service.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));

describe.skipIf(!requireTools('checking the compose file', ['docker-compose']))('deploy/compose.yaml', () => {
  it('is a valid compose file with two API colours after a one-shot migrate, a backup sidecar, compute, PostgreSQL, S3 and a TLS proxy', async () => {
    const { services } = await composeConfig(composeFile);
    expect(Object.keys(services).sort()).toEqual(
      [
        'api-blue',
        'api-green',
        'backup',
        'compute',
        'identities',
        'migrate',
        'objects',
        'objects-init',
        'postgres',
        'proxy',
      ].sort(),
    );
    expect(services.migrate!.command).toEqual(['database', 'migrate']);
    for (const colour of ['api-blue', 'api-green']) {
      const api = services[colour]!;
      expect(api.command).toEqual(['serve', '--api', 'all']);
      expect(api.depends_on?.migrate?.condition).toBe('service_completed_successfully');
      expect(api.healthcheck?.test?.join(' ')).toContain('/readyz');
      // Only the proxy is reachable from outside.
      expect(api.ports).toBeUndefined();
    }
    expect(services.migrate!.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(services.backup!.command).toEqual(['backup', 'schedule']);
    expect(services.compute!.command?.slice(0, 2)).toEqual(['compute', 'run']);
    expect(services.postgres!.image).toMatch(/postgres/);
    expect(services.proxy!.image).toMatch(/caddy/);
    expect(services.proxy!.ports?.length).toBeGreaterThan(0);
    const caddyfile = readFileSync(path.join(repoRoot, 'deploy/compose/Caddyfile'), 'utf8');
    expect(caddyfile).toMatch(/reverse_proxy api-blue:8080 api-green:8080/);
    expect(caddyfile).toMatch(/health_uri \/readyz/);
  });

  it('passes secrets only as files: every secret setting is a *_FILE naming a mounted secret', async () => {
    const { services, secrets } = await composeConfig(composeFile);
    for (const secret of Object.values(secrets))
      expect(secret.file).toContain(path.join('deploy', 'secrets'));
    for (const [name, service] of Object.entries(services)) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        expect(`${name} ${variable}`).not.toMatch(/(PASSWORD|SECRET|KEY|CREDENTIALS)$/);
        expect(String(value ?? ''), `${name} ${variable}`).not.toMatch(/:\/\/[^/@]*:[^/@]*@/);
        if (variable.endsWith('_FILE')) {
          const secret = /^(?:\/run\/secrets\/)?([^/]+)$/.exec(String(value))?.[1];
          expect(secret, `${name} ${variable}`).toBeDefined();
          expect(secretNames(service), `${name} mounts ${secret}`).toContain(secret);
        }
      }
    }
  });

  it('is refused by the parser when a service depends on one that does not exist', async () => {
    // Beside the original, so its relative paths (secrets, Caddyfile) resolve the same way.
    const broken = path.join(path.dirname(composeFile), `.broken-${process.pid}.yaml`);
    writeFileSync(
      broken,
      readFileSync(composeFile, 'utf8').replace(
        'postgres: { condition: service_healthy }',
        'postgress: { condition: service_healthy }',
      ),
    );
    try {
      await expect(composeConfig(broken)).rejects.toThrow(/postgress/);
    } finally {
      rmSync(broken);
    }
  });

  it('makes fresh, private secrets once and keeps them on a second run', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-secrets-'));
    try {
      const first = await run('bash', [makeSecrets, dir]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout.trim()).toBe(dir);
      const read = (name: string) => readFileSync(path.join(dir, name), 'utf8').trim();
      const password = read('postgres-password');
      expect(password).toMatch(/^[0-9a-f]{48}$/);
      expect(read('database-url')).toBe(`postgres://athanor:${password}@postgres:5432/athanor`);
      expect(read('s3-credentials')).toContain(`aws_secret_access_key = ${read('s3-secret-key')}`);
      expect(statSync(dir).mode & 0o077).toBe(0);
      const second = await run('bash', [makeSecrets, dir]);
      expect(second.code, second.stderr).toBe(0);
      expect(read('postgres-password')).toBe(password);
      const other = mkdtempSync(path.join(os.tmpdir(), 'athanor-secrets-'));
      await run('bash', [makeSecrets, other]);
      expect(readFileSync(path.join(other, 'postgres-password'), 'utf8').trim()).not.toBe(password);
      rmSync(other, { recursive: true, force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/*
 * This machine has no image registry, so the stack's PostgreSQL and S3 services are the suite's
 * own (a throwaway cluster, an S3 protocol peer) on loopback; Athanor's services run in the image
 * with podman exactly as compose.yaml defines them (command, entrypoint, environment, secrets
 * mounted under /run/secrets), with the host names pointed at loopback.
 */
const image = inject('athanorImage');
const postgresAdminUrl = inject('deployPostgresUrl');

describe.skipIf(
  !image || !postgresAdminUrl || !requireTools('running the compose services', ['docker-compose']),
)('the compose services, run with podman', () => {
  let peer: S3Peer;
  let secretsDir: string;
  const containers: string[] = [];

  beforeAll(async () => {
    peer = await startS3Peer();
    secretsDir = mkdtempSync(path.join(os.tmpdir(), 'athanor-compose-secrets-'));
    expect((await run('bash', [makeSecrets, secretsDir])).code).toBe(0);
    const password = readFileSync(path.join(secretsDir, 'postgres-password'), 'utf8').trim();
    // What the postgres service's entrypoint does with POSTGRES_PASSWORD_FILE.
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    const database = `athanor_compose_${process.pid}`;
    await admin.query(`CREATE ROLE ${database} LOGIN PASSWORD '${password}'`);
    await admin.query(`CREATE DATABASE ${database} OWNER ${database}`);
    await admin.end();
    const port = new URL(postgresAdminUrl).port;
    writeFileSync(
      path.join(secretsDir, 'database-url'),
      `postgres://${database}:${password}@postgres:${port}/${database}\n`,
    );
    writeFileSync(
      path.join(secretsDir, 's3-credentials'),
      `[default]\naws_access_key_id = ${peer.env.AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${peer.env.AWS_SECRET_ACCESS_KEY}\n`,
    );
  });

  afterAll(async () => {
    for (const name of containers) await podman(['rm', '-f', '-t', '0', name]);
    await peer?.stop();
    if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
  });

  async function podmanRun(
    name: string,
    service: Service,
    overrides: { env?: Record<string, string>; command?: string[]; detach?: boolean },
  ) {
    containers.push(name);
    const env = { ...service.environment, ...overrides.env };
    const args = [
      'run',
      ...(overrides.detach ? ['-d'] : []),
      '--name',
      name,
      '--network',
      'host',
      ...podmanLimits,
      '--add-host',
      'postgres:127.0.0.1',
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v ?? ''}`]),
      ...secretNames(service).flatMap((s) => ['-v', `${path.join(secretsDir, s)}:/run/secrets/${s}:ro`]),
      ...(service.entrypoint ? ['--entrypoint', service.entrypoint[0]!] : []),
      image,
      ...(service.entrypoint?.slice(1) ?? []),
      ...(overrides.command ?? service.command ?? []),
    ];
    return podman(args);
  }

  it('migrates, adds the compute identity, serves and computes on PostgreSQL and S3', async () => {
    const { services } = await composeConfig(composeFile, {
      ...process.env,
      ATHANOR_IMAGE: image,
      ATHANOR_BLUE_IMAGE: image,
      ATHANOR_GREEN_IMAGE: image,
    });
    expect(services['api-blue']!.image).toBe(image);
    expect(services.migrate!.image).toBe(image);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const objects = {
      AWS_ENDPOINT_URL: peer.endpoint,
      ATHANOR_OBJECTS_URL: peer.freshUrl(),
      ATHANOR_BACKUP_TARGET: peer.freshUrl(),
    };

    const migrated = await podmanRun('athanor-compose-migrate', services.migrate!, { env: objects });
    expect(migrated.code, migrated.stdout + migrated.stderr).toBe(0);
    const again = await podmanRun('athanor-compose-migrate-again', services.migrate!, { env: objects });
    expect(again.code, again.stderr).toBe(0);
    const identities = await podmanRun('athanor-compose-identities', services.identities!, { env: objects });
    expect(identities.code, identities.stdout + identities.stderr).toBe(0);
    // Its second run finds the identity and changes nothing.
    const identitiesAgain = await podmanRun('athanor-compose-identities-again', services.identities!, {
      env: objects,
    });
    expect(identitiesAgain.code, identitiesAgain.stderr).toBe(0);

    const api = await podmanRun('athanor-compose-api-blue', services['api-blue']!, {
      env: { ...objects, ATHANOR_HOST: '127.0.0.1', ATHANOR_PORT: String(port) },
      detach: true,
    });
    expect(api.code, api.stderr).toBe(0);
    await until(
      'api-blue to be ready',
      async () => ((await fetch(`${url}/readyz`)).ok ? true : undefined),
      60_000,
      250,
    );

    const computeCommand = services.compute!.command!.map((a) => (a === 'http://api:8080' ? url : a));
    expect(computeCommand).toContain(url);
    const compute = await podmanRun('athanor-compose-compute', services.compute!, {
      command: computeCommand,
      detach: true,
    });
    expect(compute.code, compute.stderr).toBe(0);

    // A user, made the way an operator would, through the image's CLI in the migrate service's setting.
    const added = await podmanRun('athanor-compose-add-user', services.migrate!, {
      env: objects,
      command: ['identity', 'add', '-t', 'user', '-i', 'alice', '-s', 'demo-*-*', '--json'],
    });
    expect(added.code, added.stderr).toBe(0);
    const key = (JSON.parse(added.stdout) as { key: string }).key;
    expect(key).toBeTruthy();
    const cli = (args: string[]) =>
      runCli(args, { env: { ATHANOR_URL: url, ATHANOR_ID: 'alice', ATHANOR_KEY: key }, cwd: repoRoot });
    const submitted = await cli([
      'network',
      'submit',
      'examples/hello-network.json',
      '--scope',
      'demo-compose-run',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const network = submitted.stdout.trim();
    const shown = JSON.parse((await cli(['network', 'show', network, '--json'])).stdout) as {
      transformations: { key: string }[];
    };
    const tasks: string[] = [];
    for (const tf of shown.transformations) {
      const task = (await cli(['task', 'create', tf.key])).stdout.trim();
      expect((await cli(['task', 'action', network, task])).code).toBe(0);
      tasks.push(task);
    }
    await until(
      'the compose compute service to complete every task',
      async () => {
        const status = JSON.parse((await cli(['network', 'status', network, '--json'])).stdout) as {
          complete?: number;
        };
        return status.complete === tasks.length ? true : undefined;
      },
      60_000,
      250,
    );
    const results = JSON.parse((await cli(['result', 'list', tasks[0]!, '--json'])).stdout) as {
      id: string;
    }[];
    const got = await cli(['result', 'get', results[0]!.id]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.length).toBeGreaterThan(0);

    // The compute service stops cleanly on SIGTERM and deregisters.
    const stopped = await podman(['stop', '-t', '40', 'athanor-compose-compute']);
    expect(stopped.code, stopped.stderr).toBe(0);
    const exit = await podman(['inspect', '--format', '{{.State.ExitCode}}', 'athanor-compose-compute']);
    expect(exit.stdout.trim()).toBe('0');

    // The backup sidecar, on a schedule of every few seconds, puts a backup at the S3 target.
    const sidecar = await podmanRun('athanor-compose-backup', services.backup!, {
      env: { ...objects, ATHANOR_BACKUP_SCHEDULE: '*/3 * * * * *', ATHANOR_BACKUP_DRILL_SCHEDULE: 'off' },
      detach: true,
    });
    expect(sidecar.code, sidecar.stderr).toBe(0);
    let listings = 0;
    let lastListing = '';
    const backups = await until(
      'the backup sidecar to take a backup',
      async () => {
        const listed = await podmanRun(`athanor-compose-backup-list-${listings++}`, services.migrate!, {
          env: objects,
          command: ['backup', 'list', '--json'],
        });
        lastListing = listed.stdout + listed.stderr;
        const found = JSON.parse(listed.stdout) as { id: string }[];
        return found.length > 0 ? found : undefined;
      },
      60_000,
      250,
    ).catch(async (error: Error) => {
      const log = await podman(['logs', 'athanor-compose-backup']);
      throw new Error(`${error.message}\nbackup list: ${lastListing}\nsidecar: ${log.stdout}${log.stderr}`);
    });
    expect(backups[0]!.id).toMatch(/^\d{8}T\d{6}/);
    const sidecarStopped = await podman(['stop', '-t', '60', 'athanor-compose-backup']);
    expect(sidecarStopped.code, sidecarStopped.stderr).toBe(0);
    const sidecarExit = await podman([
      'inspect',
      '--format',
      '{{.State.ExitCode}}',
      'athanor-compose-backup',
    ]);
    expect(sidecarExit.stdout.trim()).toBe('0');
  });
});
