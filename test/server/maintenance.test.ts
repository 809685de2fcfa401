import { expect, it } from 'vitest';
import { getMaintenance, setMaintenance } from '../../src/ops/maintenance.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

describeEachBackend('maintenance mode', (backend) => {
  const dir = tempDir();

  it('refuses writes and claims with 503 and Retry-After, keeps reads working, and accepts results of held leases', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server);
    const { network } = await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('a');
    const [held, released] = await compute.claim(id, { count: 2 });

    await setMaintenance(server.store, 'test', true, 'upgrading the database');
    await until(
      'the expected state',
      async () => (await call(server.url, undefined, 'GET', '/readyz')).status === 503,
    );
    const userToken = await server.token(
      'user',
      'operator',
      await server.addIdentity('user', 'operator', ['org-camp-*']),
    );
    const write = await call(server.url, userToken, 'PUT', `/v1/networks/${network}/weight`, { weight: 0.9 });
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('30');
    expect((write.body as { error: { message: string } }).error.message).toContain('upgrading the database');
    expect((await call(server.url, userToken, 'GET', `/v1/networks/${network}`)).status).toBe(200);
    await expect(compute.claim(id, { count: 1 })).rejects.toMatchObject({ code: 'maintenance' });
    // Held leases are kept alive and can be handed back; finished work is never lost: the result
    // of a lease held before maintenance is accepted.
    await compute.heartbeat(id);
    await compute.extendLease(held!.task, held!.leaseToken);
    await compute.release(released!.task, released!.leaseToken);
    const stored = await compute.submitResult(held!.task, held!.leaseToken, 'ok', Buffer.from('done'));
    expect(stored.status).toBe('complete');
    expect((await user.getNetwork(network)).weight).toBe(0.5);
    // A service can still leave; registering a new one is a write like any other.
    await compute.deregister(id);
    await expect(compute.register('b')).rejects.toMatchObject({ code: 'maintenance' });

    await setMaintenance(server.store, 'test', false);
    await until(
      'the expected state',
      async () => (await call(server.url, undefined, 'GET', '/readyz')).status === 200,
    );
    expect((await user.setNetworkWeight(network, 0.9)).weight).toBe(0.9);
    const { id: after } = await compute.register('c');
    expect(await compute.claim(after, { count: 1 })).toHaveLength(1);
  });

  it('is switched by athanor maintenance on|off|status, and audited', async () => {
    const server = await startTestServer(backend, dir);
    const cli = (args: string[]) => runCli(args, { env: { ATHANOR_DATABASE_URL: server.databaseUrl } });
    const on = await cli(['maintenance', 'on', '--reason', 'disk swap']);
    expect(on.code, on.stderr).toBe(0);
    expect((await cli(['maintenance', 'status'])).stdout).toContain('disk swap');
    expect((await getMaintenance(server.store)).on).toBe(true);
    expect((await cli(['maintenance', 'off'])).code).toBe(0);
    expect(JSON.parse((await cli(['maintenance', 'status', '--json'])).stdout)).toMatchObject({ on: false });
    const audit = await server.store.db
      .selectFrom('audit_log')
      .select('action')
      .where('action', 'like', 'maintenance.%')
      .execute();
    expect(audit.map((a) => a.action)).toEqual(['maintenance.on', 'maintenance.off']);
  });

  it('exports queue and lease metrics for Prometheus', async () => {
    const server = await startTestServer(backend, dir, { metricsToken: 'scrape-token-0123456789' });
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 3, scope: 'org-camp-metrics' });
    const { id } = await compute.register('a');
    const [c] = await compute.claim(id, { count: 1 });
    await expect(
      compute.submitResult(c!.task, c!.leaseToken + 7, 'ok', Buffer.from('x')),
    ).rejects.toMatchObject({ code: 'stale_lease' });
    const metrics = (await call(server.url, 'scrape-token-0123456789', 'GET', '/metrics')).text;
    expect(metrics).toMatch(/athanor_tasks_by_status\{status="waiting"\} 2/);
    expect(metrics).toMatch(/athanor_tasks\{scope="org-camp-metrics",status="waiting"\} 2/);
    expect(metrics).toMatch(/athanor_tasks\{scope="org-camp-metrics",status="running"\} 1/);
    expect(metrics).toMatch(/athanor_compute_services_alive 1/);
    expect(metrics).toMatch(/athanor_claim_duration_seconds_count [1-9]/);
    expect(metrics).toMatch(/athanor_stale_lease_refusals_total [1-9]/);
    expect(metrics).toContain('athanor_backup_last_success_timestamp_seconds');
  });
});
