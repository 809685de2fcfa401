import { sql } from 'kysely';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AthanorError } from '../../src/domain/errors.js';
import { migrationLockKey } from '../../src/store/dialects/postgres.js';
import {
  assertSchemaCompatible,
  checkSchema,
  getMigrationStatus,
  migrate,
  migrationChecksum,
} from '../../src/store/migrator.js';
import { migrations as releaseMigrations } from '../../src/store/migrations/index.js';
import type { Migration } from '../../src/store/migrations/migration.js';
import { openStore } from '../../src/store/open-store.js';
import { describeEachBackend, postgresAdminUrl, tempDir, testConfig } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { freshStore } from '../helpers/store.js';

const createTable = (id: number, table: string, column = 'value'): Migration => ({
  id,
  name: `create-${table}`,
  breaking: false,
  async up(db) {
    await db.schema
      .createTable(table)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn(column, 'text')
      .execute();
  },
});

/** Counts its own runs in a table, so running twice would show. */
const countingMigration = (id: number): Migration => ({
  id,
  name: `count-${id}`,
  breaking: false,
  async up(db) {
    await sql`insert into run_counter (migration_id) values (${id})`.execute(db);
  },
});

async function tableNames(store: Awaited<ReturnType<typeof freshStore>>['store']): Promise<string[]> {
  const tables = await store.db.introspection.getTables();
  return tables.map((t) => t.name).sort();
}

describe('migration checksums', () => {
  it('follow the SQL a migration issues, not its name', async () => {
    const a = await migrationChecksum(createTable(50, 'things'));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(await migrationChecksum(createTable(50, 'things'))).toBe(a);
    expect(await migrationChecksum(createTable(50, 'things', 'other_column'))).not.toBe(a);
  });
});

describeEachBackend('migrations', (backend) => {
  const dir = tempDir();

  it('database init three times applies each migration once and changes nothing after the first', async () => {
    const { url } = await freshStore(backend, dir, { migrated: false });
    const env = { ATHANOR_DATABASE_URL: url };
    const first = await runCli(['database', 'init'], { env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`initialized at migration ${releaseMigrations.at(-1)!.id}`);
    const store = await openStore(testConfig(url, dir));
    const before = await store.db.selectFrom('athanor_migrations').selectAll().execute();
    const schemaBefore = await store.backend.describeSchema(store.db);
    for (let i = 0; i < 2; i++) {
      const again = await runCli(['database', 'init'], { env });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('nothing to do');
    }
    expect(await store.db.selectFrom('athanor_migrations').selectAll().execute()).toEqual(before);
    expect(await store.backend.describeSchema(store.db)).toEqual(schemaBefore);
    const audit = await store.db
      .selectFrom('audit_log')
      .select('action')
      .where('action', '=', 'database.init')
      .execute();
    expect(audit).toHaveLength(1);
    const status = await runCli(['database', 'status', '--json'], { env });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: 'up_to_date', backend });
    const check = await runCli(['database', 'check'], { env });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    await store.close();
  });

  it('ten concurrent `database migrate` processes apply each migration exactly once', async () => {
    const { url, store } = await freshStore(backend, dir, { migrated: false });
    // Those that start after another applied migration 1 find migrations pending and take a
    // pre-migration backup; the target takes one backup at a time, so the others wait for it.
    const env = {
      ATHANOR_DATABASE_URL: url,
      ATHANOR_BACKUP_TARGET: `file:${path.join(dir, `mig-${backend}`)}`,
    };
    const runs = await Promise.all(
      Array.from({ length: 10 }, () => runCli(['database', 'migrate', '--json'], { env })),
    );
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const appliedNow = runs.flatMap((r) =>
      (JSON.parse(r.stdout) as { applied: { id: number }[] }).applied.map((a) => a.id),
    );
    expect(appliedNow.sort((a, b) => a - b)).toEqual(releaseMigrations.map((m) => m.id));
    const rows = await store.db.selectFrom('athanor_migrations').select('id').orderBy('id').execute();
    expect(rows.map((r) => r.id)).toEqual(releaseMigrations.map((m) => m.id));
    expect(await checkSchema(store)).toEqual([]);
  });

  it('reports an applied migration that was edited as drift, naming it and both checksums', async () => {
    const { store, url } = await freshStore(backend, dir, { migrated: false });
    await store.db.schema.createTable('run_counter').addColumn('migration_id', 'integer').execute();
    const original = createTable(1, 'widgets');
    await migrate(store, { lockTimeoutMs: 5000, migrations: [original] });
    const edited = createTable(1, 'widgets', 'colour');
    const status = await getMigrationStatus(store, [edited]);
    expect(status.state).toBe('drift');
    const [problem] = status.drift;
    expect(problem?.problem).toBe('checksum_changed');
    expect(problem?.message).toContain('migration 1 (create-widgets) changed after it was applied');
    expect(problem?.message).toContain((await migrationChecksum(original)).slice(0, 12));
    expect(problem?.message).toContain((await migrationChecksum(edited)).slice(0, 12));
    await expect(
      migrate(store, { lockTimeoutMs: 5000, migrations: [edited, countingMigration(2)] }),
    ).rejects.toMatchObject({
      code: 'migration_drift',
    });
    const counted = await sql<{ n: number }>`select count(*) as n from run_counter`.execute(store.db);
    expect(Number(counted.rows[0]?.n)).toBe(0);
    await expect(assertSchemaCompatible(store, [edited])).rejects.toMatchObject({ code: 'migration_drift' });

    // The same drift through the CLI: a release migration whose recorded checksum no longer matches.
    const { url: other } = await freshStore(backend, dir);
    const tampered = await openStore(testConfig(other, dir));
    await tampered.db
      .updateTable('athanor_migrations')
      .set({ checksum: 'f'.repeat(64) })
      .where('id', '=', 1)
      .execute();
    await tampered.close();
    const cli = await runCli(['database', 'status'], { env: { ATHANOR_DATABASE_URL: other } });
    expect(cli.code).toBe(3);
    expect(cli.stdout).toContain('DRIFT');
    expect(cli.stdout).toContain('ffffffffffff');
    const migrateCli = await runCli(['database', 'migrate'], { env: { ATHANOR_DATABASE_URL: other } });
    expect(migrateCli.code).toBe(3);
    expect(migrateCli.stderr).toContain('changed after it was applied');
    void url;
  });

  it('reports an applied migration missing from the code as drift', async () => {
    const { store } = await freshStore(backend, dir, { migrated: false });
    await migrate(store, {
      lockTimeoutMs: 5000,
      migrations: [createTable(1, 'a'), createTable(2, 'b'), createTable(3, 'c')],
    });
    const status = await getMigrationStatus(store, [createTable(1, 'a'), createTable(3, 'c')]);
    expect(status.state).toBe('drift');
    expect(status.drift[0]).toMatchObject({ id: 2, problem: 'missing_from_code' });
  });

  it('refuses a database that carries a newer breaking migration, and only warns for a non-breaking one', async () => {
    const { store, url } = await freshStore(backend, dir);
    const newer = {
      name: 'from-the-future',
      checksum: 'a'.repeat(64),
      applied_at: new Date().toISOString(),
      app_version: '99.0.0',
      duration_ms: 1,
      backup_id: null,
    };
    await store.db
      .insertInto('athanor_migrations')
      .values({ ...newer, id: 998, breaking: 0 })
      .execute();
    const warned = await assertSchemaCompatible(store);
    expect(warned.verdict).toBe('newer_compatible');
    const nonBreaking = await runCli(['database', 'status', '--json'], {
      env: { ATHANOR_DATABASE_URL: url },
    });
    expect(nonBreaking.code).toBe(6);
    expect(JSON.parse(nonBreaking.stdout).state).toBe('newer');

    await store.db
      .insertInto('athanor_migrations')
      .values({ ...newer, id: 999, breaking: 1 })
      .execute();
    await expect(assertSchemaCompatible(store)).rejects.toSatisfy(
      (e: AthanorError) => e.code === 'schema_newer' && e.exitCode === 6 && e.message.includes('999'),
    );
    const status = await runCli(['database', 'status'], { env: { ATHANOR_DATABASE_URL: url } });
    expect(status.code).toBe(6);
    const migrateRun = await runCli(['database', 'migrate'], { env: { ATHANOR_DATABASE_URL: url } });
    expect(migrateRun.code).toBe(6);
    expect(migrateRun.stderr).toContain('breaking migration 999');
  });

  it('says a database that is behind must be migrated', async () => {
    const { store } = await freshStore(backend, dir, { migrated: false });
    await expect(assertSchemaCompatible(store)).rejects.toMatchObject({ code: 'schema_behind' });
    await migrate(store, { lockTimeoutMs: 5000, migrations: [releaseMigrations[0] as Migration] });
    if (releaseMigrations.length > 1) {
      await expect(assertSchemaCompatible(store)).rejects.toThrow(/run 'athanor database migrate'/);
    }
    await migrate(store, { lockTimeoutMs: 5000 });
    expect((await assertSchemaCompatible(store)).verdict).toBe('compatible');
  });

  it('rolls a migration that fails half-way back, leaving the schema as it was', async () => {
    const { store } = await freshStore(backend, dir, { migrated: false });
    const good = createTable(1, 'kept');
    const failing: Migration = {
      id: 2,
      name: 'fails-half-way',
      breaking: false,
      async up(db) {
        await db.schema.createTable('half_made').addColumn('id', 'integer').execute();
        await sql`insert into kept (id, value) values (1, 'x')`.execute(db);
        await sql`select * from no_such_table`.execute(db);
      },
    };
    await migrate(store, { lockTimeoutMs: 5000, migrations: [good] });
    const schemaBefore = await store.backend.describeSchema(store.db);
    const error = await migrate(store, { lockTimeoutMs: 5000, migrations: [good, failing] }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'migration_failed' });
    expect((error as Error).message).toContain('migration 2 (fails-half-way) failed and was rolled back');
    expect((error as Error).message).toContain('unchanged at migration 1');
    expect(await store.backend.describeSchema(store.db)).toEqual(schemaBefore);
    expect(await tableNames(store)).not.toContain('half_made');
    const kept = await sql<{ n: number }>`select count(*) as n from kept`.execute(store.db);
    expect(Number(kept.rows[0]?.n)).toBe(0);
    expect((await getMigrationStatus(store, [good, failing])).databaseVersion).toBe(1);
  });

  it('migrates step by step with --to and refuses to go backwards', async () => {
    const { store } = await freshStore(backend, dir, { migrated: false });
    const list = [createTable(1, 'one'), createTable(2, 'two'), createTable(3, 'three')];
    expect(await migrate(store, { lockTimeoutMs: 5000, migrations: list, to: 2 })).toHaveLength(2);
    expect((await getMigrationStatus(store, list)).pending.map((m) => m.id)).toEqual([3]);
    await migrate(store, { lockTimeoutMs: 5000, migrations: list });
    await expect(migrate(store, { lockTimeoutMs: 5000, migrations: list, to: 1 })).rejects.toThrow(
      /only go forward/,
    );
    await expect(migrate(store, { lockTimeoutMs: 5000, migrations: list, to: 7 })).rejects.toThrow(
      /no migration 7/,
    );
  });

  it('database check finds a change made by hand, with exit code 3', async () => {
    const { store, url } = await freshStore(backend, dir);
    expect(await checkSchema(store)).toEqual([]);
    await sql`create index sneaky on identities (updated_at)`.execute(store.db);
    await sql`alter table settings add column extra text`.execute(store.db);
    const differences = await checkSchema(store);
    expect(differences.map((d) => d.object).join(' ')).toMatch(/sneaky/);
    const cli = await runCli(['database', 'check'], { env: { ATHANOR_DATABASE_URL: url } });
    expect(cli.code).toBe(3);
    expect(cli.stdout).toContain('sneaky');
    expect(cli.stderr).toContain('differs from the expected one');
  });

  it('database reset refuses without --yes and recreates an empty database with it', async () => {
    const { store, url } = await freshStore(backend, dir);
    const env = { ATHANOR_DATABASE_URL: url };
    expect((await runCli(['identity', 'add', '-i', 'alice', '-k', 'a-long-enough-key'], { env })).code).toBe(
      0,
    );
    const refused = await runCli(['database', 'reset'], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(await store.db.selectFrom('identities').selectAll().execute()).toHaveLength(1);
    const reset = await runCli(['database', 'reset', '--yes'], { env });
    expect(reset.code, reset.stderr).toBe(0);
    expect(await store.db.selectFrom('identities').selectAll().execute()).toHaveLength(0);
    expect((await getMigrationStatus(store)).state).toBe('up_to_date');
  });

  it('prints the plan with its SQL and changes nothing', async () => {
    const { url, store } = await freshStore(backend, dir, { migrated: false });
    const plan = await runCli(['database', 'migrate', '--plan'], { env: { ATHANOR_DATABASE_URL: url } });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('-- migration 1 (identities-audit-settings)');
    expect(plan.stdout).toMatch(/create table "identities"/);
    expect(await tableNames(store)).toEqual([]);
  });
});

describe.runIf(postgresAdminUrl() !== '')('concurrent migrators in one process [postgres]', () => {
  const dir = tempDir();

  it('ten stores migrating at once run each migration exactly once', async () => {
    const { store, url } = await freshStore('postgres', dir, { migrated: false });
    await store.db.schema.createTable('run_counter').addColumn('migration_id', 'integer').execute();
    const list = Array.from({ length: 5 }, (_, i) => countingMigration(i + 1));
    const stores = await Promise.all(Array.from({ length: 10 }, () => openStore(testConfig(url, dir))));
    await Promise.all(stores.map((s) => migrate(s, { lockTimeoutMs: 20_000, migrations: list })));
    await Promise.all(stores.map((s) => s.close()));
    const runs = await sql<{
      migration_id: number;
    }>`select migration_id from run_counter order by migration_id`.execute(store.db);
    expect(runs.rows.map((r) => r.migration_id)).toEqual([1, 2, 3, 4, 5]);
  });
});

describeEachBackend('the migration lock', (backend) => {
  const dir = tempDir();

  it('a migration that cannot get the lock in time exits 5 and changes nothing', async () => {
    const { url, store } = await freshStore(backend, dir, { migrated: false });
    // Another process holds the lock: a write transaction on SQLite, the advisory lock on PostgreSQL.
    const holderScript =
      backend === 'sqlite'
        ? `const D = require('better-sqlite3'); const d = new D(process.argv[1]); d.exec('begin immediate');
           console.log('locked'); setTimeout(() => d.exec('rollback'), 30000);`
        : `const pg = require('pg'); const c = new pg.Client(process.argv[1]);
           c.connect().then(() => c.query('select pg_advisory_lock($1)', [${migrationLockKey}]))
             .then(() => console.log('locked')); setTimeout(() => c.end(), 30000);`;
    const holder = spawn(
      process.execPath,
      ['-e', holderScript, backend === 'sqlite' ? url.slice('sqlite:'.length) : url],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      const run = await runCli(['database', 'migrate'], {
        env: { ATHANOR_DATABASE_URL: url, ATHANOR_BUSY_TIMEOUT_MS: '300', ATHANOR_LOCK_TIMEOUT_MS: '300' },
      });
      expect(run.code, run.stderr).toBe(5);
      expect(run.stderr).toMatch(/lock/);
    } finally {
      holder.kill('SIGKILL');
    }
    expect((await getMigrationStatus(store)).databaseVersion).toBe(0);
  });
});
