import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';

describe('a backup target that cannot be written', () => {
  const dir = tempDir();
  const env = { ATHANOR_DATA_DIR: path.join(dir, 'data'), ATHANOR_DATABASE_URL: `sqlite:${dir}/athanor.db` };
  // The directory exists, but where its partial writes go is a file: every write fails, for root
  // too (a read-only directory stops only other users).
  const broken = path.join(dir, 'broken');

  beforeAll(async () => {
    expect((await runCli(['database', 'init'], { env })).code).toBe(0);
    mkdirSync(broken);
    writeFileSync(path.join(broken, '.athanor-tmp'), 'not a directory');
  });

  it('backup create --target fails with backup_target_unavailable naming the target and --target', async () => {
    const result = await runCli(['--json', 'backup', 'create', '--target', `file:${broken}`], { env });
    expect(result.code).toBe(1);
    const { error } = JSON.parse(result.stderr) as { error: { code: string; message: string } };
    expect(error.code).toBe('backup_target_unavailable');
    expect(error.message).toContain(`file:${broken}`);
    expect(error.message).toContain('from --target');
    expect(error.message).not.toContain('ATHANOR_OBJECTS_URL');
    // Nothing half-written is left behind as if it were a backup.
    expect(readdirSync(broken)).toEqual(['.athanor-tmp']);
  });

  it('through ATHANOR_BACKUP_TARGET, the message names that variable', async () => {
    const result = await runCli(['backup', 'create'], {
      env: { ...env, ATHANOR_BACKUP_TARGET: `file:${broken}` },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('from ATHANOR_BACKUP_TARGET');
    expect(result.stderr).not.toContain('internal');
  });

  it('the database is untouched: the next backup to a good target succeeds and lists', async () => {
    const good = `file:${path.join(dir, 'good')}`;
    const created = await runCli(['--json', 'backup', 'create', '--target', good], { env });
    expect(created.code, created.stderr).toBe(0);
    const list = await runCli(['--json', 'backup', 'list', '--target', good], { env });
    expect(JSON.parse(list.stdout)).toHaveLength(1);
  });
});
