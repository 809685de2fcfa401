import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer } from '../helpers/server.js';

describe('the CLI says the right thing', () => {
  const dir = tempDir();

  it('a missing scope and a wrong key get different exit codes, both listed in help exit-codes', async () => {
    const server = await startTestServer('sqlite', dir);
    const key = await server.addIdentity('user', 'ines', ['labA-camp-proj']);
    const as = (identityKey: string) => (args: string[]) =>
      runCli(args, { env: { ATHANOR_URL: server.url, ATHANOR_ID: 'ines', ATHANOR_KEY: identityKey } });

    const ok = await as(key)([
      'network',
      'submit',
      'examples/hello-network.json',
      '--scope',
      'labA-camp-proj',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const outside = await as(key)([
      'network',
      'submit',
      'examples/hello-network.json',
      '--scope',
      'labB-camp-proj',
    ]);
    expect(outside.code).toBe(8);
    expect(outside.stderr).toMatch(/holds no scope covering 'labB-camp-proj'.*add-scope/);
    const wrongKey = await as('not-the-key-0123456789')(['network', 'list']);
    expect(wrongKey.code).toBe(4);

    const codes = await runCli(['help', 'exit-codes', '--json']);
    const table = JSON.parse(codes.stdout) as { code: number; meaning: string }[];
    expect(table.find((r) => r.code === 8)?.meaning).toMatch(/scope/);
    expect(table.find((r) => r.code === 4)?.meaning).toMatch(/wrong key/);
  });

  it('a mistyped audit action is refused with the valid ones listed', async () => {
    const server = await startTestServer('sqlite', dir);
    await server.addIdentity('user', 'jo', ['labA-camp-proj']);
    const env = { ATHANOR_DATABASE_URL: server.databaseUrl };
    const typo = await runCli(['audit', 'list', '--action', 'identiy'], { env });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/'identiy' matches no audited action; use one of: .*\bidentity\b/);
    expect(typo.stderr).toMatch(/identity\.add\b/);
    const family = await runCli(['audit', 'list', '--action', 'identity', '--json'], { env });
    expect(family.code, family.stderr).toBe(0);
    expect((JSON.parse(family.stdout) as { action: string }[]).map((e) => e.action)).toContain(
      'identity.add',
    );
    // A family this release records but that has no entry yet is not an error: just nothing yet.
    const none = await runCli(['audit', 'list', '--action', 'maintenance'], { env });
    expect(none.code, none.stderr).toBe(0);
  });

  it('a usage error points at the help of the command that was typed', async () => {
    const bad = await runCli(['identity', 'add', '-t', 'bogus', '-i', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/run 'athanor identity add --help' for usage/);
  });

  it('a backup target is checked before anything is written, and its errors name the setting used', async () => {
    const server = await startTestServer('sqlite', dir);
    const env = { ATHANOR_DATABASE_URL: server.databaseUrl, ATHANOR_DATA_DIR: server.config.dataDir };
    const notUrl = await runCli(['backup', '--target', './backups', 'create'], { env, cwd: dir });
    expect(notUrl.code).toBe(2);
    expect(notUrl.stderr).toMatch(/'\.\/backups' \(from --target\).*file:<dir> or s3:/);
    expect(notUrl.stderr).not.toMatch(/ATHANOR_OBJECTS_URL/);

    const typo = await runCli(['backup', 'create', '--json'], {
      env: { ...env, ATHANOR_BACKUP_TARGET: `file:${dir}/no/such/place` },
    });
    expect(typo.code).toBe(2);
    expect(JSON.parse(typo.stderr) as unknown).toEqual({
      error: {
        code: 'invalid_argument',
        message: expect.stringMatching(
          /from ATHANOR_BACKUP_TARGET.*parent .*no\/such is not an existing directory/,
        ),
      },
    });
    expect(existsSync(`${dir}/no`), 'nothing was created').toBe(false);

    const fine = await runCli(['backup', '--target', `file:${dir}/backups-here`, 'create'], { env });
    expect(fine.code, fine.stderr).toBe(0);
  });
});
