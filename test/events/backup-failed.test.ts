import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { EventView } from '../../src/domain/event-types.js';
import { FsObjectStore } from '../../src/objects/fs-object-store.js';
import { createBackup } from '../../src/ops/backup/create-backup.js';
import { grantRole, revokeRole } from '../../src/service/identity-roles.js';
import { describeEachBackend, tempDir, testConfig } from '../helpers/backends.js';
import { call, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const none = { mode: 'none' } as const;

describeEachBackend('backup.failed event', (backend) => {
  const dir = tempDir();

  it('is recorded when a backup fails, readable by admins only, and not for a backup that succeeds', async () => {
    const server = await startTestServer(backend, dir, {
      eventsIntervalMs: 50,
      webhookAllowPrivate: true,
      webhookRetryBaseMs: 100,
      webhookRetryMaxMs: 800,
    });
    // A receiver on loopback that notes which endpoint each delivery was for (by path).
    const received: { path: string; type: string }[] = [];
    const receiver = http.createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        received.push({ path: request.url ?? '', type: (JSON.parse(body) as { type: string }).type });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const adminKey = await server.addIdentity('user', 'opsadmin', ['ops-x-y']);
    await grantRole(server.store, 'test', { kind: 'user', identifier: 'opsadmin' }, 'admin');
    // A user holding every scope, but no role: installation events are still not theirs.
    const plainKey = await server.addIdentity('user', 'everywhere', ['*-*-*']);
    const admin = await server.token('user', 'opsadmin', adminKey);
    const plain = await server.token('user', 'everywhere', plainKey);
    for (const [token, who, scope] of [
      [admin, 'admin', 'ops-x-y'],
      [plain, 'plain', '*-*-*'],
    ] as const) {
      const added = await call(server.url, token, 'POST', '/v1/webhooks', {
        url: `${hook}/${who}`,
        scope,
        events: ['backup.failed'],
      });
      expect(added.status).toBe(200);
    }
    const config = testConfig(server.databaseUrl!, dir);

    await createBackup({
      config,
      target: new FsObjectStore(path.join(dir, `good-${backend}`)),
      encryption: none,
    });
    // A target under a regular file: every write into it fails.
    const blocker = path.join(dir, `blocker-${backend}`);
    writeFileSync(blocker, 'not a directory');
    const bad = new FsObjectStore(path.join(blocker, 'target'));
    await expect(createBackup({ config, target: bad, encryption: none })).rejects.toThrow();

    const read = async (token: string, query = '') => {
      const answer = await call(server.url, token, 'GET', `/v1/events?type=backup.failed${query}`);
      expect(answer.status).toBe(200);
      return (answer.body as { events: EventView[] }).events;
    };
    const seen = await until('the backup.failed event', async () => {
      const events = await read(admin);
      return events.length > 0 ? events : undefined;
    });
    expect(seen).toHaveLength(1);
    const event = seen[0]!;
    expect(event.type).toBe('backup.failed');
    expect(event.scope).toBe('@operator');
    expect(event.network).toBeNull();
    expect(event.data).toMatchObject({
      target: bad.url,
      actor: expect.any(String),
      code: expect.any(String),
    });
    expect(String(event.data?.message)).not.toBe('');
    expect(event.subject).toBe(event.data?.backupId);
    // A scope filter does not hide it from an admin.
    expect(await read(admin, '&scope=ops-*-*')).toHaveLength(1);

    expect(await read(plain)).toEqual([]);
    const all = await call(server.url, plain, 'GET', '/v1/events');
    expect((all.body as { events: EventView[] }).events.filter((e) => e.scope === '@operator')).toEqual([]);

    await until('the admin webhook delivery', () => received.some((r) => r.path === '/admin'));
    // The plain user's endpoint, past the admin's delivery and a few more rounds, got nothing.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(received).toEqual([{ path: '/admin', type: 'backup.failed' }]);
    receiver.close();

    // Withdrawing the role withdraws the events.
    await revokeRole(server.store, 'test', { kind: 'user', identifier: 'opsadmin' }, 'admin');
    // (Tokens issued before the change stop working; a new one may take a second to be accepted.)
    const after = await until('a token issued after the role was withdrawn', async () => {
      const token = await server.token('user', 'opsadmin', adminKey);
      const answer = await call(server.url, token, 'GET', '/v1/events?type=backup.failed');
      return answer.status === 200 ? (answer.body as { events: EventView[] }).events : undefined;
    });
    expect(after).toEqual([]);
  });
});
