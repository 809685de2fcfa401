import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { createBackup } from '../../../src/ops/backup/create-backup.js';
import { restoreBackup } from '../../../src/ops/backup/restore-backup.js';
import { openStore } from '../../../src/store/open-store.js';
import { describeEachBackend, freshDatabaseUrl, tempDir } from '../../helpers/backends.js';
import { freshStore } from '../../helpers/store.js';
import { configFor, fillAuditLog, freshTarget, rowCount } from './fixtures.js';

/**
 * A writer that commits continuously, each transaction touching three tables: it adds identity
 * w<n>, its scope, and sets setting writer.count to n. In any consistent snapshot the three agree.
 */
const writerScript = String.raw`
const [backend, url] = process.argv.slice(1);
const now = () => new Date().toISOString();
const statements = (n) => [
  ["insert into identities (kind, identifier, key_hash, disabled, created_at, updated_at, credentials_changed_at) values ('user', $1, 'hash', 0, $2, $2, $2)", ['w' + n, now()]],
  ["insert into identity_scopes (kind, identifier, scope, created_at) values ('user', $1, 'org-camp-proj', $2)", ['w' + n, now()]],
  ["insert into settings (key, value, updated_at) values ('writer.count', $1, $2) on conflict (key) do update set value = excluded.value, updated_at = excluded.updated_at", [String(n), now()]],
];
let n = 0;
if (backend === 'sqlite') {
  const Database = require('better-sqlite3');
  const db = new Database(url.slice('sqlite:'.length));
  db.pragma('busy_timeout = 10000');
  const tx = db.transaction((k) => {
    for (const [text, params] of statements(k)) {
      const ordered = [];
      db.prepare(text.replace(/\$(\d)/g, (_, i) => (ordered.push(params[i - 1]), '?'))).run(...ordered);
    }
  });
  const step = () => { n += 1; tx.immediate(n); if (n % 20 === 0) console.log(n); setImmediate(step); };
  step();
} else {
  const pg = require('pg');
  const client = new pg.Client({ connectionString: url });
  client.connect().then(async () => {
    for (;;) {
      n += 1;
      await client.query('begin');
      for (const [text, params] of statements(n)) await client.query(text, params);
      await client.query('commit');
      if (n % 20 === 0) console.log(n);
    }
  });
}
`;

describeEachBackend('a backup taken while a writer commits continuously', (backend) => {
  const dir = tempDir();

  it('restores a database in which every cross-table invariant holds', async () => {
    const { store, url } = await freshStore(backend, dir);
    await fillAuditLog(store, 20_000);
    const writer = spawn(process.execPath, ['-e', writerScript, backend, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let committed = 0;
    createInterface({ input: writer.stdout }).on('line', (line) => (committed = Number(line)));
    const target = freshTarget(dir);
    let duringBackup: number;
    try {
      while (committed < 100) {
        if (writer.exitCode !== null) throw new Error(`the writer exited with code ${writer.exitCode}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const atStart = committed;
      // Small chunks make the backup slow enough for the writer to commit many times during it.
      await createBackup({
        config: configFor(url, dir),
        target,
        encryption: { mode: 'none' },
        chunkBytes: 32 * 1024,
      });
      duringBackup = committed - atStart;
    } finally {
      writer.kill('SIGKILL');
    }
    expect(duringBackup, 'the writer kept committing while the backup ran').toBeGreaterThan(40);

    const intoUrl = await freshDatabaseUrl(backend, dir);
    await restoreBackup({
      target,
      backup: 'latest',
      config: configFor(intoUrl, dir),
      keys: { identities: [], passphrases: [] },
    });
    const restored = await openStore(configFor(intoUrl, dir));
    try {
      const setting = await restored.db
        .selectFrom('settings')
        .select('value')
        .where('key', '=', 'writer.count')
        .executeTakeFirst();
      const count = Number(setting?.value);
      expect(count).toBeGreaterThanOrEqual(100);
      const identities = await restored.db
        .selectFrom('identities')
        .select('identifier')
        .where('identifier', 'like', 'w%')
        .execute();
      const scopes = await restored.db
        .selectFrom('identity_scopes')
        .select('identifier')
        .where('identifier', 'like', 'w%')
        .execute();
      const expected = Array.from({ length: count }, (_, i) => `w${i + 1}`).sort();
      expect(identities.map((r) => r.identifier).sort()).toEqual(expected);
      expect(scopes.map((r) => r.identifier).sort()).toEqual(expected);
      expect(await rowCount(restored, 'audit_log')).toBe(20_001);
    } finally {
      await restored.close();
    }
  });
});
