import { expect, it } from 'vitest';
import { createBackup } from '../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../src/ops/backup/restore-backup.js';
import { verifyBackup } from '../../src/ops/backup/verify-backup.js';
import { listAudit } from '../../src/service/audit.js';
import { identityQuotas } from '../../src/service/identity-quotas.js';
import { openStore } from '../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { call, startTestServer } from '../helpers/server.js';
import { configFor, freshTarget } from '../ops/backup/fixtures.js';

const network = (name: string) => ({
  scope: 'lab-camp-proj',
  name,
  transformations: [{ name: 't', protocol: 'echo', inputs: { name } }],
});

describeEachBackend('athanor identity set-quota', (backend) => {
  const dir = tempDir();

  it('limits waiting tasks and networks per identity, shown, audited, and lifted with none', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'alice', ['lab-camp-proj']);
    const bobKey = await server.addIdentity('user', 'bob', ['lab-camp-proj']);
    const cli = (args: string[]) => runCli(args, { env: { ATHANOR_DATABASE_URL: server.databaseUrl } });
    const alice = await server.token('user', 'alice', key);
    const bob = await server.token('user', 'bob', bobKey);

    const set = await cli([
      'identity',
      'set-quota',
      '-i',
      'alice',
      '--max-waiting-tasks',
      '3',
      '--max-networks',
      '1',
    ]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain("user identity 'alice' quotas: waiting tasks ≤ 3, networks ≤ 1");
    const listed = JSON.parse((await cli(['identity', 'list', '--json'])).stdout) as {
      identifier: string;
      quotas: unknown;
    }[];
    expect(Object.fromEntries(listed.map((i) => [i.identifier, i.quotas]))).toEqual({
      alice: { maxWaitingTasks: 3, maxNetworks: 1 },
      bob: { maxWaitingTasks: null, maxNetworks: null },
    });
    expect((await cli(['identity', 'show', '-i', 'alice'])).stdout).toMatch(
      /quotas\s+waiting tasks ≤ 3, networks ≤ 1/,
    );

    // Networks: the first is accepted, submitting it again still answers it, a second is refused.
    const first = await call(server.url, alice, 'POST', '/v1/networks', network('one'));
    expect(first.status, first.text).toBe(200);
    const again = await call(server.url, alice, 'POST', '/v1/networks', network('one'));
    expect(again.status, again.text).toBe(200);
    expect(again.body).toMatchObject({ key: (first.body as { key: string }).key, created: false });
    const second = await call(server.url, alice, 'POST', '/v1/networks', network('two'));
    expect(second.status).toBe(403);
    expect(second.body).toMatchObject({ error: { code: 'networks_quota_exceeded' } });
    expect((second.body as { error: { message: string } }).error.message).toMatch(
      /networks quota of user:alice is 1.*set-quota -i alice --max-networks/,
    );
    // The CLI reports it with the not-permitted exit code and the same message.
    const cliSubmit = await runCli(
      ['network', 'submit', 'examples/hello-network.json', '--scope', 'lab-camp-proj'],
      {
        env: { ATHANOR_URL: server.url, ATHANOR_ID: 'alice', ATHANOR_KEY: key },
      },
    );
    expect(cliSubmit.code).toBe(8);
    expect(cliSubmit.stderr).toContain('networks quota of user:alice is 1');
    // Another identity in the same scope is not limited by alice's quota.
    expect((await call(server.url, bob, 'POST', '/v1/networks', network('two'))).status).toBe(200);
    const inScope = await call(server.url, alice, 'GET', '/v1/networks');
    expect((inScope.body as { name: string }[]).map((n) => n.name).sort()).toEqual(['one', 'two']);

    // Waiting tasks: 2 + 1 fit in 3; one more is refused and creates nothing.
    const transformation = (first.body as { transformations: string[] }).transformations[0];
    const tasksPath = `/v1/transformations/${transformation}/tasks`;
    expect((await call(server.url, alice, 'POST', tasksPath, { count: 2 })).status).toBe(200);
    const third = await call(server.url, alice, 'POST', tasksPath, { count: 1 });
    expect(third.status).toBe(200);
    const over = await call(server.url, alice, 'POST', tasksPath, { count: 1 });
    expect(over.status).toBe(403);
    expect(over.body).toMatchObject({ error: { code: 'waiting_tasks_quota_exceeded' } });
    expect((over.body as { error: { message: string } }).error.message).toMatch(
      /waiting-tasks quota of user:alice is 3: 3 of its tasks are waiting/,
    );
    const waiting = async () =>
      ((await call(server.url, alice, 'GET', '/v1/tasks?status=waiting')).body as unknown[]).length;
    expect(await waiting()).toBe(3);
    // A task that leaves `waiting` makes room for one more.
    const someTask = (third.body as { id: string }[])[0]?.id;
    const deleted = await call(server.url, alice, 'POST', '/v1/tasks/status', {
      tasks: [someTask],
      status: 'deleted',
    });
    expect(deleted.status, deleted.text).toBe(200);
    expect((await call(server.url, alice, 'POST', tasksPath, { count: 1 })).status).toBe(200);

    // 'none' lifts one limit and keeps the other.
    const lifted = await cli(['identity', 'set-quota', '-i', 'alice', '--max-networks', 'none', '--json']);
    expect(lifted.code, lifted.stderr).toBe(0);
    expect(JSON.parse(lifted.stdout)).toMatchObject({ quotas: { maxWaitingTasks: 3, maxNetworks: null } });
    expect((await call(server.url, alice, 'POST', '/v1/networks', network('three'))).status).toBe(200);
    expect((await call(server.url, alice, 'POST', tasksPath, { count: 1 })).status).toBe(403);

    const audit = await listAudit(server.store, { action: 'identity.set-quota' });
    expect(audit.map((a) => [a.target, a.outcome])).toEqual([
      ['user:alice', 'ok'],
      ['user:alice', 'ok'],
    ]);
  });

  it('holds under concurrent creations: of 12 at once against a quota of 5, exactly 5 are stored', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'erin', ['lab-camp-proj']);
    const token = await server.token('user', 'erin', key);
    const set = await runCli(['identity', 'set-quota', '-i', 'erin', '--max-waiting-tasks', '5'], {
      env: { ATHANOR_DATABASE_URL: server.databaseUrl },
    });
    expect(set.code, set.stderr).toBe(0);
    const submitted = await call(server.url, token, 'POST', '/v1/networks', network('race'));
    const transformation = (submitted.body as { transformations: string[] }).transformations[0];
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        call(server.url, token, 'POST', `/v1/transformations/${transformation}/tasks`, { count: 1 }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(5).fill(200), ...Array(7).fill(403)]);
    const waiting = await server.store.db
      .selectFrom('tasks')
      .select('id')
      .where('created_by', '=', 'user:erin')
      .where('status', '=', 'waiting')
      .execute();
    expect(waiting.length).toBe(5);
  });

  it('refuses bad values naming the flag, before anything is written', async () => {
    const server = await startTestServer(backend, dir);
    await server.addIdentity('user', 'carol', ['lab-camp-proj']);
    await server.addIdentity('compute', 'worker', ['lab-camp-proj']);
    const cli = (args: string[]) => runCli(args, { env: { ATHANOR_DATABASE_URL: server.databaseUrl } });
    for (const [flag, value] of [
      ['--max-waiting-tasks', '-1'],
      ['--max-waiting-tasks', '2.5'],
      ['--max-networks', 'lots'],
      ['--max-networks', '99999999999'],
    ] as const) {
      const run = await cli(['identity', 'set-quota', '-i', 'carol', flag, value]);
      expect(run.code, `${flag} ${value}`).toBe(2);
      expect(run.stderr).toContain(flag);
    }
    const neither = await cli(['identity', 'set-quota', '-i', 'carol']);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('--max-waiting-tasks');
    const compute = await cli([
      'identity',
      'set-quota',
      '-t',
      'compute',
      '-i',
      'worker',
      '--max-networks',
      '1',
    ]);
    expect(compute.code).toBe(2);
    expect(compute.stderr).toContain('quotas limit what user identities submit');
    const missing = await cli(['identity', 'set-quota', '-i', 'nobody', '--max-networks', '1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no user identity 'nobody'");
    expect(await identityQuotas(server.store, { kind: 'user', identifier: 'carol' })).toEqual({
      maxWaitingTasks: null,
      maxNetworks: null,
    });
    const audit = await listAudit(server.store, { action: 'identity.set-quota' });
    expect(audit.filter((a) => a.outcome === 'ok')).toEqual([]);
  });

  it('are carried by a backup into a restored database, and the backup verifies', async () => {
    const server = await startTestServer(backend, dir);
    await server.addIdentity('user', 'dan', ['lab-camp-proj']);
    const cli = (args: string[]) => runCli(args, { env: { ATHANOR_DATABASE_URL: server.databaseUrl } });
    const set = await cli(['identity', 'set-quota', '-i', 'dan', '--max-waiting-tasks', '7']);
    expect(set.code, set.stderr).toBe(0);
    const target = freshTarget(dir);
    const { manifest } = await createBackup({
      config: configFor(server.databaseUrl as string, dir),
      target,
      encryption: { mode: 'none' },
    });
    expect(manifest.tables.find((t) => t.name === 'identity_quotas')?.rowCount).toBe(1);
    const keys = { identities: [], passphrases: [] };
    const verification = await verifyBackup({ target, backup: manifest.id, mode: 'full', keys });
    expect(verification).toMatchObject({ ok: true, problems: [] });
    const intoUrl = await freshDatabaseUrl(backend, dir);
    await restoreBackup({ target, backup: manifest.id, config: configFor(intoUrl, dir), keys });
    const restored = await openStore(configFor(intoUrl, dir));
    try {
      expect(await identityQuotas(restored, { kind: 'user', identifier: 'dan' })).toEqual({
        maxWaitingTasks: 7,
        maxNetworks: null,
      });
    } finally {
      await restored.close();
    }
  });
});
