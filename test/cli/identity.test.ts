import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';

/** Everything the database holds, as text: the SQLite files, or a dump of every PostgreSQL table. */
async function databaseContents(url: string): Promise<string> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    const dir = path.dirname(file);
    return readdirSync(dir)
      .filter((f) => f.startsWith(path.basename(file)))
      .map((f) => readFileSync(path.join(dir, f)).toString('latin1'))
      .join('\n');
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>(
      "select tablename from pg_tables where schemaname = 'public'",
    );
    const dumps: string[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await client.query(`select * from ${tablename}`);
      dumps.push(JSON.stringify(rows.rows));
    }
    return dumps.join('\n');
  } finally {
    await client.end();
  }
}

describeEachBackend('athanor identity', (backend) => {
  const dir = tempDir();

  async function setup() {
    const { url } = await freshStore(backend, dir);
    const env = { ATHANOR_DATABASE_URL: url };
    const cli = (args: string[], input?: string) => runCli(args, { env, input });
    return { url, cli };
  }

  it('follows the seed grammar: add, add-scope, list, list-scope, remove-scope, remove', async () => {
    const { cli } = await setup();
    const add = await cli(['identity', 'add', '-t', 'user', '-i', 'alice', '-k', 'alice-key-0123456789']);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain("added user identity 'alice'");
    expect(add.stdout + add.stderr).not.toContain('alice-key-0123456789');

    const scopes = await cli([
      'identity',
      'add-scope',
      '-t',
      'user',
      '-i',
      'alice',
      '-s',
      'org-camp-proj',
      '-s',
      'org-other-*',
    ]);
    expect(scopes.code, scopes.stderr).toBe(0);
    expect(
      (await cli(['identity', 'add', '-t', 'compute', '-i', 'hpc-cluster-1', '-k', 'compute-key-0123456']))
        .code,
    ).toBe(0);

    const list = await cli(['identity', 'list', '-t', 'user']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/alice\s+active/);
    expect(list.stdout).not.toContain('hpc-cluster-1');
    const listJson = JSON.parse((await cli(['identity', 'list', '--json'])).stdout) as {
      identifier: string;
      kind: string;
    }[];
    expect(listJson.map((i) => `${i.kind}:${i.identifier}`)).toEqual(['compute:hpc-cluster-1', 'user:alice']);

    const listScope = await cli(['identity', 'list-scope', '-t', 'user', '-i', 'alice']);
    expect(listScope.stdout.trim().split('\n')).toEqual(['org-camp-proj', 'org-other-*']);

    const removeScope = await cli([
      'identity',
      'remove-scope',
      '-t',
      'user',
      '-i',
      'alice',
      '-s',
      'org-camp-proj',
    ]);
    expect(removeScope.code).toBe(0);
    expect((await cli(['identity', 'list-scope', '-i', 'alice'])).stdout.trim()).toBe('org-other-*');

    const refused = await cli(['identity', 'remove', '-t', 'user', '-i', 'alice']);
    expect(refused.code, 'no terminal to ask on, no --yes').toBe(2);
    expect(refused.stderr).toMatch(/refusing without --yes/);
    expect((await cli(['identity', 'list-scope', '-i', 'alice'])).stdout.trim()).toBe('org-other-*');
    const remove = await cli(['identity', 'remove', '-t', 'user', '-i', 'alice', '--yes']);
    expect(remove.code, remove.stderr).toBe(0);
    const gone = await cli(['identity', 'show', '-i', 'alice']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("no user identity 'alice'");
  });

  it('set-key rotates the key and keeps the scopes; the old key stops working', async () => {
    const { cli } = await setup();
    await cli(['identity', 'add', '-i', 'bob', '-k', 'bob-old-key-123456', '-s', 'org-camp-proj']);
    expect((await cli(['identity', 'verify', '-i', 'bob', '-k', 'bob-old-key-123456'])).code).toBe(0);
    const rotate = await cli(['identity', 'set-key', '-i', 'bob', '-k', '-'], 'bob-new-key-654321\n');
    expect(rotate.code, rotate.stderr).toBe(0);
    expect((await cli(['identity', 'list-scope', '-i', 'bob'])).stdout.trim()).toBe('org-camp-proj');
    const old = await cli(['identity', 'verify', '-i', 'bob', '-k', 'bob-old-key-123456']);
    expect(old.code).toBe(4);
    expect((await cli(['identity', 'verify', '-i', 'bob', '-k', 'bob-new-key-654321'])).code).toBe(0);
  });

  it('generates a strong key when -k is absent, prints it once, and that key authenticates', async () => {
    const { cli, url } = await setup();
    const add = await cli(['identity', 'add', '-t', 'compute', '-i', 'worker-7']);
    expect(add.code).toBe(0);
    const key = add.stdout.trim();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(add.stderr).toContain('shown once');
    const verify = await cli(['identity', 'verify', '-t', 'compute', '-i', 'worker-7', '-k', '-'], key);
    expect(verify.code, verify.stderr).toBe(0);
    // The same key is no user key: user and compute identities never mix.
    expect((await cli(['identity', 'verify', '-t', 'user', '-i', 'worker-7', '-k', key])).code).toBe(4);
    expect(await databaseContents(url)).not.toContain(key);
    const show = await cli(['identity', 'show', '-t', 'compute', '-i', 'worker-7', '--json']);
    expect(show.stdout).not.toContain(key);
    expect(JSON.stringify(JSON.parse(show.stdout))).not.toMatch(/hash|argon/);
  });

  it('never writes a key to the database or the audit log, only an argon2id hash', async () => {
    const { cli, url } = await setup();
    const canary = 'CANARY-key-never-stored-3f9a';
    await cli(['identity', 'add', '-i', 'carol', '-k', canary]);
    await cli(['identity', 'set-key', '-i', 'carol', '-k', `${canary}-2`]);
    await cli(['identity', 'add', '-i', 'carol', '-k', `${canary}-3`]); // refused, and audited as an error
    const contents = await databaseContents(url);
    expect(contents).not.toContain('CANARY');
    expect(contents).toContain('$argon2id$');
    const audit = await cli(['audit', 'list', '--json']);
    expect(audit.stdout).not.toContain('CANARY');
    const entries = JSON.parse(audit.stdout) as {
      action: string;
      outcome: string;
      actor: string;
      target: string;
    }[];
    expect(entries.map((e) => `${e.action}:${e.outcome}`)).toEqual([
      'identity.add:ok',
      'identity.set-key:ok',
      'identity.add:error',
    ]);
    expect(entries[0]?.actor).toMatch(/^.+@.+$/);
    expect(entries[0]?.target).toBe('user:carol');
  });

  it('refuses to add an existing identity and points to set-key, changing nothing', async () => {
    const { cli } = await setup();
    await cli(['identity', 'add', '-i', 'dave', '-k', 'dave-key-123456789', '-s', 'a-b-c']);
    const again = await cli(['identity', 'add', '-i', 'dave', '-k', 'other-key-123456789']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
    expect(again.stderr).toContain('athanor identity set-key -t user -i dave');
    expect((await cli(['identity', 'verify', '-i', 'dave', '-k', 'dave-key-123456789'])).code).toBe(0);
    expect((await cli(['identity', 'list-scope', '-i', 'dave'])).stdout.trim()).toBe('a-b-c');
  });

  it('refuses bad scopes and identifiers with exit 2, naming the offending part', async () => {
    const { cli } = await setup();
    await cli(['identity', 'add', '-i', 'erin', '-k', 'erin-key-123456789']);
    const scope = await cli(['identity', 'add-scope', '-i', 'erin', '-s', 'org-camp-proj', '-s', '*-camp-*']);
    expect(scope.code).toBe(2);
    expect(scope.stderr).toContain("'*-camp-*': a wildcard part must be followed only by wildcards");
    expect((await cli(['identity', 'list-scope', '-i', 'erin'])).stdout.trim()).toBe('');
    const id = await cli(['identity', 'add', '-i', '9lives', '-k', 'some-key-123456789']);
    expect(id.code).toBe(2);
    expect(id.stderr).toContain("identifier '9lives': must start with a letter");
    const kind = await cli(['identity', 'add', '-t', 'robot', '-i', 'r2', '-k', 'some-key-123456789']);
    expect(kind.code).toBe(2);
    const missing = await cli(['identity', 'add-scope', '-i', 'erin']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '-s, --scope <scope>'");
  });

  it('disable, enable and expiry decide whether the key works', async () => {
    const { cli } = await setup();
    await cli(['identity', 'add', '-i', 'frank', '-k', 'frank-key-123456789']);
    expect((await cli(['identity', 'disable', '-i', 'frank'])).code).toBe(0);
    expect((await cli(['identity', 'verify', '-i', 'frank', '-k', 'frank-key-123456789'])).code).toBe(4);
    expect((await cli(['identity', 'list'])).stdout).toMatch(/frank\s+disabled/);
    expect((await cli(['identity', 'enable', '-i', 'frank'])).code).toBe(0);
    expect((await cli(['identity', 'verify', '-i', 'frank', '-k', 'frank-key-123456789'])).code).toBe(0);
    const past = await cli(['identity', 'set-expiry', '-i', 'frank', '--at', '2001-01-01T00:00:00Z']);
    expect(past.code, 'a past instant needs --force').toBe(2);
    expect(past.stderr).toMatch(/in the past.*--force/);
    expect((await cli(['identity', 'verify', '-i', 'frank', '-k', 'frank-key-123456789'])).code).toBe(0);
    expect(
      (await cli(['identity', 'set-expiry', '-i', 'frank', '--at', '2001-01-01T00:00:00Z', '--force'])).code,
    ).toBe(0);
    expect((await cli(['identity', 'verify', '-i', 'frank', '-k', 'frank-key-123456789'])).code).toBe(4);
    expect((await cli(['identity', 'show', '-i', 'frank'])).stdout).toMatch(/status\s+expired/);
    expect((await cli(['identity', 'set-expiry', '-i', 'frank', '--never'])).code).toBe(0);
    expect((await cli(['identity', 'verify', '-i', 'frank', '-k', 'frank-key-123456789'])).code).toBe(0);
  });

  it('an unknown identity and a wrong key get the same answer', async () => {
    const { cli } = await setup();
    await cli(['identity', 'add', '-i', 'gina', '-k', 'gina-key-123456789']);
    const wrong = await cli(['identity', 'verify', '-i', 'gina', '-k', 'not-ginas-key-000']);
    const unknown = await cli(['identity', 'verify', '-i', 'nobody', '-k', 'not-ginas-key-000']);
    expect(wrong.code).toBe(4);
    expect(unknown.code).toBe(4);
    expect(wrong.stderr).toBe(unknown.stderr);
  });
});

describe('athanor without a database', () => {
  const dir = tempDir();

  it('says how to create one instead of creating an empty file', async () => {
    const run = await runCli(['identity', 'list'], {
      env: { ATHANOR_DATABASE_URL: `sqlite:${dir}/none/athanor.db` },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("run 'athanor database init'");
    expect(readdirSync(dir)).toEqual([]);
  });

  it('prints the exit code table', async () => {
    const run = await runCli(['help', 'exit-codes']);
    expect(run.code).toBe(0);
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8])
      expect(run.stdout).toMatch(new RegExp(`^${code}\\s+\\S`, 'm'));
    const json = JSON.parse((await runCli(['help', 'exit-codes', '--json'])).stdout) as { code: number }[];
    expect(json.map((r) => r.code)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('lists the environment variables in --help and exits 2 on an unknown command', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('ATHANOR_DATABASE_URL');
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
  });
});
