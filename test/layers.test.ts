import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
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

describe('layers', () => {
  it('the public client depends on nothing server-side: only client/ and domain/', () => {
    const outside = [...reachable('client/index.ts')].filter(
      (file) => !file.startsWith(`client${path.sep}`) && !file.startsWith(`domain${path.sep}`),
    );
    expect(outside).toEqual([]);
  });

  it('only store/ reads or builds a sqlite: database URL; everything else asks store/database-url.ts', () => {
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.ts') && !file.startsWith(`store${path.sep}`),
    );
    expect(files.length).toBeGreaterThan(100);
    const branching = /startsWith\(\s*['"`]sqlite:|['"`]sqlite:['"`]\.length|`sqlite:\$\{/;
    expect(files.filter((file) => branching.test(readFileSync(path.join(src, file), 'utf8')))).toEqual([]);
  });

  it('no code outside store/ branches on which database it runs on: dialect differences live behind Backend', () => {
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.ts') && !file.startsWith(`store${path.sep}`),
    );
    const branching = /backend\.name\s*[!=]==?|switch\s*\([^)]*backend\.name/;
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

  it("the client's claim is the shape the compute service hands out", () => {
    expectTypeOf<ServiceClaim>().toExtend<ClientClaim>();
    expectTypeOf<ClientClaim>().toExtend<Readonly<ServiceClaim>>();
  });
});
