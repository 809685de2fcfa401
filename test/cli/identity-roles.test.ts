import { expect, it } from 'vitest';
import { listAudit } from '../../src/service/audit.js';
import { Authenticator } from '../../src/service/authenticator.js';
import { JwtKeyring } from '../../src/service/jwt-secrets.js';
import { seedIdentity } from '../helpers/identities.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';

describeEachBackend('athanor identity add-role / remove-role', (backend) => {
  const dir = tempDir();

  it('grants and withdraws the admin role, audited; withdrawing revokes tokens issued before', async () => {
    const { store, url } = await freshStore(backend, dir);
    const cli = (args: string[]) => runCli(args, { env: { ATHANOR_DATABASE_URL: url } });
    await seedIdentity(store, { kind: 'user', identifier: 'alice', scopes: ['a-b-c'] });

    const granted = await cli(['identity', 'add-role', '-i', 'alice', '-r', 'admin']);
    expect(granted.code, granted.stderr).toBe(0);
    expect(granted.stdout).toContain("user identity 'alice' roles: admin");
    const listed = await cli(['identity', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ identifier: 'alice', roles: ['admin'] }]);
    expect((await cli(['identity', 'show', '-i', 'alice'])).stdout).toMatch(/roles\s+admin/);

    // No identity cache (0 ms), so the revocation is seen at once.
    const keyring = await JwtKeyring.open(store, { configured: undefined });
    const authenticator = new Authenticator(store, keyring, 600, 60, 0);
    const token = (await authenticator.issueToken('user', 'alice', 'alice-key-0123456789')).access_token;
    await expect(authenticator.authenticate(token, 'user')).resolves.toMatchObject({ identifier: 'alice' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const revoked = await cli(['identity', 'remove-role', '-i', 'alice', '-r', 'admin']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain("user identity 'alice' roles: (none)");
    await expect(authenticator.authenticate(token, 'user')).rejects.toThrow(/revoked/);

    const audit = await listAudit(store, { action: 'identity.' });
    expect(
      audit.filter((a) => a.action.endsWith('-role')).map((a) => [a.action, a.target, a.outcome]),
    ).toEqual([
      ['identity.add-role', 'user:alice', 'ok'],
      ['identity.remove-role', 'user:alice', 'ok'],
    ]);
  });

  it('refuses unknown roles, compute identities and missing identities with the usual exit codes', async () => {
    const { store, url } = await freshStore(backend, dir);
    const cli = (args: string[]) => runCli(args, { env: { ATHANOR_DATABASE_URL: url } });
    await seedIdentity(store, { kind: 'compute', identifier: 'worker' });
    const unknown = await cli(['identity', 'add-role', '-i', 'alice', '-r', 'root']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'root' is invalid");
    const compute = await cli(['identity', 'add-role', '-t', 'compute', '-i', 'worker', '-r', 'admin']);
    expect(compute.code).toBe(2);
    expect(compute.stderr).toContain('roles are for user identities');
    const missing = await cli(['identity', 'add-role', '-i', 'nobody', '-r', 'admin']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no user identity 'nobody'");
  });
});
