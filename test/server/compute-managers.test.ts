import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { AthanorError } from '../../src/domain/errors.js';
import { controlManager, demandCountCap } from '../../src/service/managers.js';
import { sweep } from '../../src/service/sweep.js';
import { demandQuery } from '../../src/store/queries/managers.js';
import { parseScope } from '../../src/domain/scope.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { call, startTestServer } from '../helpers/server.js';

const launches = (...names: string[]) =>
  names.map((launch) => ({ launch, state: 'running' as const, startedAt: new Date().toISOString() }));

describeEachBackend('compute managers on the server', (backend) => {
  const dir = tempDir();

  it('answer each manager the demand of its own scopes, per scope, of the protocols asked', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server, 'org-camp-*');
    await networkWithTasks(user, { scope: 'org-camp-a', name: 'a', count: 3 });
    await networkWithTasks(user, { scope: 'org-camp-b', name: 'b', count: 5, protocol: 'sleep' });

    const a = await compute.registerManager({
      name: 'mgr-a',
      driver: 'local',
      scopes: ['org-camp-a'],
      minServices: 0,
      maxServices: 4,
    });
    const b = await compute.registerManager({
      name: 'mgr-b',
      driver: 'local',
      scopes: ['org-camp-b'],
      minServices: 0,
      maxServices: 4,
    });
    const forA = await compute.managerHeartbeat(a.id, { launches: [] });
    const forB = await compute.managerHeartbeat(b.id, { launches: [] });
    expect(forA.instruction).toBe('ok');
    expect(forA.demand).toMatchObject({
      waiting: 3,
      capped: false,
      scopes: [{ scope: 'org-camp-a', waiting: 3 }],
    });
    expect(forB.demand).toMatchObject({
      waiting: 5,
      scopes: [{ scope: 'org-camp-b', waiting: 5 }],
    });

    // The same figure for external autoscalers, for the identity's scopes or the ones asked.
    expect((await compute.demand()).waiting).toBe(8);
    expect((await compute.demand({ scopes: ['org-camp-b'] })).scopes).toEqual([
      { scope: 'org-camp-b', waiting: 5 },
    ]);
    expect((await compute.demand({ protocols: ['echo'] })).waiting).toBe(3);
    // A scope outside the identity's is not widened into it.
    expect((await compute.demand({ scopes: ['other-camp-b'] })).waiting).toBe(0);

    // Claimed tasks are no longer demand.
    const service = await compute.register('svc');
    await compute.claim(service.id, { count: 2, scopes: ['org-camp-b'] });
    expect((await compute.managerHeartbeat(b.id, { launches: [] })).demand.waiting).toBe(3);
  });

  it('give a restarted manager its registration back and refuse bad registrations', async () => {
    const server = await startTestServer(backend, dir);
    const { compute, computeCredentials: creds } = await queueClients(server, 'org-camp-*');
    const first = await compute.registerManager({
      name: 'm',
      driver: 'slurm',
      minServices: 0,
      maxServices: 3,
    });
    const again = await compute.registerManager({
      name: 'm',
      driver: 'slurm',
      minServices: 1,
      maxServices: 5,
    });
    expect(again).toMatchObject({ id: first.id, resumed: true });
    expect(first.resumed).toBe(false);
    expect((await compute.getManager(first.id)).maxServices).toBe(5);

    await expect(
      compute.registerManager({
        name: 'x',
        driver: 'local',
        scopes: ['zzz-*-*'],
        minServices: 0,
        maxServices: 1,
      }),
    ).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    await expect(
      compute.registerManager({ name: 'x', driver: 'local', minServices: 4, maxServices: 2 }),
    ).rejects.toMatchObject({ code: 'invalid_argument', status: 400 });
    const token = await server.token('compute', creds.identifier, creds.key);
    const zero = await call(server.url, token, 'POST', '/compute/v1/managers', {
      name: 'z',
      driver: 'local',
      minServices: 0,
      maxServices: 0,
    });
    expect(zero.status).toBe(400);
    // A service cannot claim to belong to a manager of another identity.
    const other = await queueClients(server, 'org-camp-*');
    await expect(
      other.compute.register('svc', 'h', { manager: first.id, launch: 'l1' }),
    ).rejects.toMatchObject({
      code: 'not_found',
    });
    // Another identity does not see or drive this manager.
    await expect(other.compute.managerHeartbeat(first.id, { launches: [] })).rejects.toMatchObject({
      code: 'not_found',
    });
    expect(await other.compute.listManagers()).toEqual([]);
  });

  it('carry an operator’s pause, cap and stop to the next heartbeat, audited', async () => {
    const server = await startTestServer(backend, dir);
    const { user, compute } = await queueClients(server, 'org-camp-*');
    await networkWithTasks(user, { scope: 'org-camp-a', count: 2 });
    const m = await compute.registerManager({ name: 'ops', driver: 'local', minServices: 0, maxServices: 6 });

    await controlManager(server.store, 'alice@host', 'ops', { paused: true });
    expect(await compute.managerHeartbeat(m.id, { launches: [] })).toMatchObject({
      instruction: 'skip',
      maxServices: 6,
    });
    await controlManager(server.store, 'alice@host', 'ops', { paused: false, cap: 2 });
    expect(await compute.managerHeartbeat(m.id, { launches: [] })).toMatchObject({
      instruction: 'ok',
      maxServices: 2,
    });
    // Pause and cap outlive a restart of the manager.
    await controlManager(server.store, 'alice@host', m.id, { paused: true });
    await compute.registerManager({ name: 'ops', driver: 'local', minServices: 0, maxServices: 6 });
    expect(await compute.managerHeartbeat(m.id, { launches: [] })).toMatchObject({
      instruction: 'skip',
      maxServices: 2,
    });
    await controlManager(server.store, 'alice@host', 'ops', { stop: true });
    expect((await compute.managerHeartbeat(m.id, { launches: [] })).instruction).toBe('shutdown');
    await expect(controlManager(server.store, 'alice@host', 'nobody', { stop: true })).rejects.toThrow(
      AthanorError,
    );
    await expect(controlManager(server.store, 'alice@host', 'ops', { cap: -1 })).rejects.toMatchObject({
      code: 'invalid_argument',
    });

    // Each decision a manager reports is audited and shown in its status.
    await compute.managerHeartbeat(m.id, {
      launches: [],
      decisions: [
        {
          at: new Date().toISOString(),
          action: 'start',
          count: 2,
          reason: 'starting 2 services: 2 waiting tasks',
        },
      ],
    });
    const audit = await server.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('target', '=', 'ops')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      'compute.manager.register',
      'compute.manager.pause',
      'compute.manager.cap',
      'compute.manager.pause',
      'compute.manager.register',
      'compute.manager.stop-requested',
      'compute.manager.start',
    ]);
    expect(JSON.parse(audit.at(-1)!.details!)).toMatchObject({
      count: 2,
      reason: 'starting 2 services: 2 waiting tasks',
    });
    const view = await compute.getManager(m.id);
    expect(view.decisions.at(-1)).toMatchObject({
      action: 'start',
      reason: 'starting 2 services: 2 waiting tasks',
    });
  });

  it('drain a managed service through its heartbeat answer, and expire silent managers', async () => {
    const server = await startTestServer(backend, dir, { registrationTtlMs: 60_000 });
    const { user, compute } = await queueClients(server, 'org-camp-*');
    await networkWithTasks(user, { scope: 'org-camp-a', count: 1 });
    const m = await compute.registerManager({ name: 'dr', driver: 'local', minServices: 0, maxServices: 2 });
    const s1 = await compute.register('one', 'h', { manager: m.id, launch: 'aaa' });
    const s2 = await compute.register('two', 'h', { manager: m.id, launch: 'bbb' });
    const [claim] = await compute.claim(s1.id, { count: 1 });
    const answer = await compute.managerHeartbeat(m.id, { launches: launches('aaa', 'bbb') });
    expect(answer.services.map((s) => [s.launch, s.leases, s.draining])).toEqual([
      ['aaa', 1, false],
      ['bbb', 0, false],
    ]);
    expect((await compute.heartbeat(s2.id, [])).drain).toBe(false);
    await compute.managerHeartbeat(m.id, { launches: launches('aaa', 'bbb'), drain: ['bbb'] });
    expect((await compute.heartbeat(s2.id, [])).drain).toBe(true);
    const held = await compute.heartbeat(s1.id, [{ task: claim!.task, leaseToken: claim!.leaseToken }]);
    expect(held).toMatchObject({ drain: false, leases: [{ task: claim!.task }] });
    await compute.deregister(s2.id);
    expect(
      (await compute.managerHeartbeat(m.id, { launches: launches('aaa') })).services.map((s) => s.launch),
    ).toEqual(['aaa']);

    // A manager that stops heartbeating expires; its next heartbeat takes the registration back.
    await sweep(server.store, Date.now() + 120_000);
    expect((await compute.getManager(m.id)).state).toBe('expired');
    expect((await compute.managerHeartbeat(m.id, { launches: [] })).instruction).toBe('ok');
    expect((await compute.getManager(m.id)).state).toBe('active');
    await compute.deregisterManager(m.id);
    expect((await compute.managerHeartbeat(m.id, { launches: [] })).instruction).toBe('shutdown');
  });

  it(
    'count demand with one indexed statement that reads at most the cap at a large waiting count',
    { timeout: 240_000 },
    async () => {
      const server = await startTestServer(backend, dir);
      const { user, compute } = await queueClients(server, 'big-camp-*');
      const { network, transformations } = await networkWithTasks(user, { scope: 'big-camp-p', count: 1 });
      const other = await networkWithTasks(user, { scope: 'big-camp-q', count: 1 });
      const db = server.store.db;
      const bulk = 50_000;
      const now = new Date().toISOString();
      // One statement per table, the same SQL on both backends: a recursive series of ids.
      for (const [hub, transformation, prefix] of [
        [network, transformations[0]!, 'p'],
        [other.network, other.transformations[0]!, 'q'],
      ] as const) {
        await sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${bulk})
          insert into tasks (id, scope, transformation_key, status, priority, attempts, restarts, created_at, created_by, updated_at, lease_token)
          select ${`bulk-${prefix}-`} || cast(i as text), ${`big-camp-${prefix}`}, ${transformation}, 'waiting', 10, 0, 0, ${now}, 'bench', ${now}, 0 from n`.execute(
          db,
        );
        await sql`insert into hub_tasks (network_key, task_id, weight, actioned_at, priority, claim_key)
          select ${hub}, id, 0.5, ${now}, 10, 0.5 from tasks where substr(id, 1, 7) = ${`bulk-${prefix}-`}`.execute(
          db,
        );
      }
      await server.store.backend.refreshStatistics(db, 'tasks', bulk * 2);
      await server.store.backend.refreshStatistics(db, 'hub_tasks', bulk * 2);

      const demand = await compute.demand({ scopes: ['big-camp-p'] });
      expect(demand).toMatchObject({ waiting: demandCountCap, capped: true });
      expect(demand.scopes).toEqual([{ scope: 'big-camp-p', waiting: demandCountCap }]);

      const plan = await server.store.backend.queryPlan(
        db,
        demandQuery(db, { scopes: [parseScope('big-camp-p')], cap: demandCountCap }),
      );
      const text = plan.join('\n');
      // The tasks and hub entries are reached through their keys, never read whole.
      expect(text).not.toMatch(/Seq Scan on (tasks|hub_tasks)/);
      expect(text).not.toMatch(/^SCAN (t|ht)\b/m);
      expect(text).toMatch(/Limit|LIMIT|SEARCH/);
    },
  );
});
