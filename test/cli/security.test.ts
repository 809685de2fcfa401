import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { call, startTestServer } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeEachBackend('athanor security commands', (backend) => {
  const dir = tempDir();

  it('identity add-scope refuses a scope longer than the API accepts, with exit 2, granting nothing', async () => {
    const server = await startTestServer(backend, dir);
    await server.addIdentity('user', 'wide', ['a-b-c']);
    const env = { ATHANOR_DATABASE_URL: server.databaseUrl };
    const long = `org-campaign-${'p'.repeat(10_000)}`;
    const refused = await runCli(['identity', 'add-scope', '-t', 'user', '-i', 'wide', '-s', long], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('at most 200 characters');
    const exactly = `org-campaign-${'p'.repeat(200 - 'org-campaign-'.length)}`;
    const granted = await runCli(['identity', 'add-scope', '-t', 'user', '-i', 'wide', '-s', exactly], {
      env,
    });
    expect(granted.code, granted.stderr).toBe(0);
    const listed = await runCli(['--json', 'identity', 'list-scope', '-t', 'user', '-i', 'wide'], { env });
    expect(JSON.parse(listed.stdout)).toEqual(expect.arrayContaining(['a-b-c', exactly]));
    expect(listed.stdout).not.toContain(long);
  });

  it('token rotate-secret keeps old tokens for the grace period, then they stop working', async () => {
    const server = await startTestServer(backend, dir);
    const key = await server.addIdentity('user', 'rotor', ['a-b-c']);
    const env = { ATHANOR_DATABASE_URL: server.databaseUrl };
    const before = await server.token('user', 'rotor', key);

    const graceful = await runCli(['token', 'rotate-secret', '--grace', '1h'], { env });
    expect(graceful.code, graceful.stderr).toBe(0);
    await sleep(6000);
    const signedNew = await server.token('user', 'rotor', key);
    expect((await call(server.url, before, 'GET', '/v1/whoami')).status).toBe(200);
    expect((await call(server.url, signedNew, 'GET', '/v1/whoami')).status).toBe(200);

    const hard = await runCli(['token', 'rotate-secret', '--grace', '1s'], { env });
    expect(hard.code, hard.stderr).toBe(0);
    await sleep(6000);
    expect((await call(server.url, before, 'GET', '/v1/whoami')).status).toBe(401);
    expect((await call(server.url, signedNew, 'GET', '/v1/whoami')).status).toBe(401);
    const after = await server.token('user', 'rotor', key);
    expect((await call(server.url, after, 'GET', '/v1/whoami')).status).toBe(200);

    const configured = await runCli(['token', 'rotate-secret'], {
      env: { ...env, ATHANOR_JWT_SECRET: 'a-configured-secret-of-forty-characters!!' },
    });
    expect(configured.code).toBe(2);
    expect(configured.stderr).toContain('ATHANOR_JWT_PREVIOUS_SECRET');
  }, 30_000);
});
