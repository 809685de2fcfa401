import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, requireTools, run } from './tools.js';

const unitsDir = path.join(repoRoot, 'deploy/systemd');

/** The units as an operator installs them: the template once, plus an instance per colour. */
function installUnits(): { dir: string; units: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'athanor-units-'));
  for (const file of readdirSync(unitsDir)) copyFileSync(path.join(unitsDir, file), path.join(dir, file));
  symlinkSync('athanor@.service', path.join(dir, 'athanor@blue.service'));
  const units = readdirSync(dir)
    .filter((f) => f.endsWith('.service') && f !== 'athanor@.service')
    .map((f) => path.join(dir, f));
  return { dir, units };
}

describe.skipIf(!requireTools('checking the systemd units', ['systemd-analyze']))('deploy/systemd', () => {
  const { dir, units } = installUnits();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has a colour template, the compute service, the backup scheduler and the migration', () => {
    expect(units.map((u) => path.basename(u)).sort()).toEqual([
      'athanor-backup.service',
      'athanor-compute.service',
      'athanor-migrate.service',
      'athanor@blue.service',
    ]);
    const commands = units.map((u) => /^ExecStart=.*main\.js (.*)$/m.exec(readFileSync(u, 'utf8'))?.[1]);
    expect(commands.sort()).toEqual([
      'backup schedule',
      'compute run --concurrency 4',
      'database migrate',
      'serve --api all',
    ]);
  });

  it('passes systemd-analyze verify without a single warning', async () => {
    const result = await run('systemd-analyze', ['verify', '--man=no', ...units]);
    expect(result.stderr + result.stdout).toBe('');
    expect(result.code).toBe(0);
  });

  it('would report a misspelt setting, so the check above can fail', async () => {
    const broken = path.join(dir, 'athanor-typo.service');
    writeFileSync(
      broken,
      readFileSync(path.join(unitsDir, 'athanor-compute.service'), 'utf8').replace(
        'KillSignal=',
        'KilSignal=',
      ),
    );
    const result = await run('systemd-analyze', ['verify', '--man=no', broken]);
    expect(result.stderr).toMatch(/Unknown key 'KilSignal'/);
    rmSync(broken);
  });

  it('keeps every long-running service hardened (systemd-analyze security exposure at most 2.0)', async () => {
    for (const unit of units.filter((u) => !u.endsWith('athanor-migrate.service'))) {
      const result = await run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', unit]);
      const exposure = /Overall exposure level for \S+: (\d+\.\d+)/.exec(result.stdout)?.[1];
      process.stderr.write(`[deploy] ${path.basename(unit)}: exposure ${exposure}\n`);
      expect(result.code, result.stdout).toBe(0);
    }
  });
});
