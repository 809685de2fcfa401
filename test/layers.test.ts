import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { settingSpecs } from '../src/config/resolve-config.js';
import { processVariables } from '../src/config/settings.js';
import type { Claim as ClientClaim } from '../src/domain/api-views.js';
import type { Claim as ServiceClaim } from '../src/service/claims.js';

const src = path.resolve(import.meta.dirname, '../src');

/** Every module `entry` reaches through its relative imports (types included), as src/ paths. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    const relative = path.relative(src, file);
    if (seen.has(relative)) return;
    seen.add(relative);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/from '(\.[^']+)'/g)) {
      visit(path.resolve(path.dirname(file), (match[1] ?? '').replace(/\.js$/, '.ts')));
    }
  };
  visit(path.join(src, entry));
  return seen;
}

/** Every source file under src/, as a src/-relative path with `/` separators. */
function sourceFiles(): string[] {
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => file.split(path.sep).join('/'));
}

/** The layer a src/ file is in: its top folder, or the file itself at the top (`version.ts`). */
const layerOf = (file: string) => (file.includes('/') ? `${file.split('/')[0]}/` : file);

/** Every relative import and re-export in src/ (dynamic ones too), with whether it is types only. */
function imports(): { from: string; to: string; typeOnly: boolean }[] {
  const found: { from: string; to: string; typeOnly: boolean }[] = [];
  for (const file of sourceFiles()) {
    const text = readFileSync(path.join(src, file), 'utf8');
    const pattern = /(?:import|export)\s+(type\s+)?[^;]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g;
    for (const match of text.matchAll(pattern)) {
      const target = (match[2] ?? match[3] ?? '').replace(/\.js$/, '.ts');
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), target));
      found.push({ from: file, to, typeOnly: match[1] !== undefined });
    }
  }
  return found;
}

interface ImportRule {
  /** A layer (`store/`) or one file of it (`config/environment.ts`). */
  readonly target: string;
  readonly typesOnly: boolean;
}

/**
 * The "may import" table of docs/architecture.md, by layer. `everything below it` is every layer
 * of a later row; `(types)` after a name allows type imports only; other notes in brackets say
 * what is used and are not checked. `version.ts` (the release version) is open to every layer.
 */
function importTable(): Map<string, ImportRule[]> {
  const doc = readFileSync(path.resolve(import.meta.dirname, '../docs/architecture.md'), 'utf8');
  const start = doc.indexOf('| layer | may import |');
  const rows = doc
    .slice(start)
    .split('\n')
    .slice(2)
    .filter(
      (line, index, lines) => line.startsWith('|') && lines.slice(0, index).every((l) => l.startsWith('|')),
    );
  const parsed = rows.map((row) => {
    const [, left = '', right = ''] = row.split('|').map((cell) => cell.trim());
    const layers = [...left.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    const rules = [...right.matchAll(/`([^`]+)`(\s*\(types\))?/g)].map((m): ImportRule => ({
      target: m[1] ?? '',
      typesOnly: m[2] !== undefined,
    }));
    return { layers, rules, everythingBelow: right.includes('everything below it') };
  });
  const table = new Map<string, ImportRule[]>();
  parsed.forEach(({ layers, rules, everythingBelow }, index) => {
    const below = everythingBelow
      ? parsed.slice(index + 1).flatMap((row) => row.layers.map((target) => ({ target, typesOnly: false })))
      : [];
    for (const layer of layers)
      table.set(layer, [...rules, ...below, { target: 'version.ts', typesOnly: false }]);
  });
  return table;
}

function grants(rule: ImportRule, to: string, typeOnly: boolean): boolean {
  if (rule.typesOnly && !typeOnly) return false;
  return rule.target.endsWith('/') ? to.startsWith(rule.target) : to === rule.target;
}

describe('layers', () => {
  it('the public client depends on nothing server-side: only client/ and domain/', () => {
    const outside = [...reachable('client/index.ts')].filter(
      (file) => !file.startsWith(`client${path.sep}`) && !file.startsWith(`domain${path.sep}`),
    );
    expect(outside).toEqual([]);
  });

  it('only store/ reads or builds a sqlite: database URL; everything else asks domain/database-url.ts', () => {
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.ts') && !file.startsWith(`store${path.sep}`),
    );
    expect(files.length).toBeGreaterThan(100);
    const branching = /startsWith\(\s*['"`]sqlite:|['"`]sqlite:['"`]\.length|`sqlite:\$\{/;
    expect(files.filter((file) => branching.test(readFileSync(path.join(src, file), 'utf8')))).toEqual([]);
  });

  it('keeps every command file under 250 lines: commands parse, call one function, render', () => {
    const commands = path.join(src, 'cli', 'commands');
    const long = readdirSync(commands)
      .filter((file) => file.endsWith('.ts'))
      .map((file) => ({ file, lines: readFileSync(path.join(commands, file), 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > 250);
    expect(long).toEqual([]);
  });

  it('every import between layers is one that the table in docs/architecture.md allows', () => {
    const rules = importTable();
    expect(rules.size).toBeGreaterThan(8);
    const broken = imports()
      .filter(({ from, to }) => layerOf(from) !== layerOf(to))
      .filter(({ from, to, typeOnly }) => {
        const allowed = rules.get(layerOf(from));
        if (allowed === undefined) return true;
        return !allowed.some((rule) => grants(rule, to, typeOnly));
      })
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(broken).toEqual([]);
  });

  it('reads process.env only in config/ (the CLI entry may, and the standalone SDK for its cache)', () => {
    const allowed = new Map([
      // The public client builds alone (no config/): it finds its cache as any library would.
      ['client/download-results.ts', 'XDG_CACHE_HOME'],
    ]);
    const readers = sourceFiles()
      .filter((file) => !file.startsWith('config/') && file !== 'cli/main.ts')
      .filter((file) => /process\.env\b/.test(readFileSync(path.join(src, file), 'utf8')));
    expect(readers.filter((file) => !allowed.has(file))).toEqual([]);
    // An entry that is no longer needed goes: the list only shrinks.
    expect([...allowed.keys()].filter((file) => !readers.includes(file))).toEqual([]);
  });

  it('branches on the backend (SQLite or PostgreSQL) only inside store/', () => {
    // Where a backend is told apart by design: the URL reader and backup's per-backend snapshots.
    const byDesign = new Set([
      'domain/database-url.ts',
      'ops/backup/open-snapshot.ts',
      'ops/backup/snapshot-sqlite.ts',
      'ops/backup/snapshot-postgres.ts',
      // point-in-time recovery: pgBackRest for PostgreSQL, WAL replication for SQLite
      'ops/pitr/index.ts',
      'ops/pitr/replication-settings.ts',
    ]);
    // Known offenders, each to move behind the Backend interface (store/dialects/): this list
    // only shrinks, and the test fails when an entry no longer branches.
    const offenders = new Set([
      // which backend's file or database a restore replaces
      'ops/backup/replace-database.ts',
      // the SQLite-only hint after a restore (servers hold the replaced file)
      'cli/commands/backup.ts',
    ]);
    const branch =
      /backend\.name\s*[!=]==?|switch\s*\([^)]*backend\.name|\bbackend\s*[!=]==\s*['"`](sqlite|postgres)|['"`](sqlite|postgres)['"`]\s*[!=]==\s*[\w.?]*backend\b/;
    const branching = sourceFiles()
      .filter((file) => !file.startsWith('store/') && !byDesign.has(file))
      .filter((file) => branch.test(readFileSync(path.join(src, file), 'utf8')));
    expect(branching.filter((file) => !offenders.has(file))).toEqual([]);
    expect([...offenders].filter((file) => !branching.includes(file))).toEqual([]);
  });

  it('every ATHANOR_ variable the code names is a setting of the one table, or one of its process variables', () => {
    const known = new Set([
      ...Object.values(settingSpecs).flatMap((spec) => [spec.env, `${spec.env}_FILE`]),
      ...Object.values(processVariables).map((variable) => variable.env),
    ]);
    const named = new Set(
      sourceFiles().flatMap((file) =>
        [...readFileSync(path.join(src, file), 'utf8').matchAll(/\bATHANOR_[A-Z0-9_]*[A-Z0-9]\b/g)].map(
          (m) => m[0],
        ),
      ),
    );
    // ATHANOR_X is the table's own placeholder for a setting's variable.
    expect(
      [...named].filter((name) => !known.has(name) && !['ATHANOR_X', 'ATHANOR_X_FILE'].includes(name)),
    ).toEqual([]);
  });

  it("the client's claim is the shape the compute service hands out", () => {
    expectTypeOf<ServiceClaim>().toExtend<ClientClaim>();
    expectTypeOf<ClientClaim>().toExtend<Readonly<ServiceClaim>>();
  });
});
