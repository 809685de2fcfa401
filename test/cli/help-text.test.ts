import type { Command } from 'commander';
import { expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { settingSpecs } from '../../src/config/resolve-config.js';
import { runCli } from '../helpers/cli.js';

/** Every command of the tree with its path: `[['network', 'list'], …]`, groups included. */
function commandPaths(command: Command, path: string[] = []): { path: string[]; command: Command }[] {
  return command.commands.flatMap((sub) => [
    { path: [...path, sub.name()], command: sub },
    ...commandPaths(sub, [...path, sub.name()]),
  ]);
}

/** The column at which each entry's description starts, per section of a help text. */
function descriptionColumns(help: string): Map<string, Set<number>> {
  const columns = new Map<string, Set<number>>();
  let section = '';
  for (const line of help.split('\n')) {
    const heading = /^(\w[\w ]*):/.exec(line);
    if (heading) {
      section = heading[1] ?? '';
      continue;
    }
    // An entry: two spaces, the term, at least two spaces, then its description.
    const entry = /^( {2}\S(?:\S| (?=\S))*)( {2,})\S/.exec(line);
    if (!entry || !section) continue;
    const set = columns.get(section) ?? new Set<number>();
    set.add((entry[1] ?? '').length + (entry[2] ?? '').length);
    columns.set(section, set);
  }
  return columns;
}

it('every command has a description and a usage line that names its whole path', async () => {
  const program = await buildProgram();
  const commands = commandPaths(program);
  // network, task, result, identity, backup, deploy … and their subcommands
  expect(commands.length).toBeGreaterThan(40);
  const problems: string[] = [];
  for (const { path, command } of commands) {
    const help = command.helpInformation();
    const name = path.join(' ');
    if (!command.description()) problems.push(`${name}: no description`);
    if (!help.startsWith(`Usage: athanor ${name} `))
      problems.push(`${name}: usage line ${help.split('\n')[0]}`);
    for (const option of command.options) {
      if (!option.description) problems.push(`${name} ${option.flags}: no description`);
    }
  }
  expect(problems).toEqual([]);
});

it("every section of every command's help starts its descriptions in one column", async () => {
  const program = await buildProgram();
  const misaligned: string[] = [];
  for (const { path, command } of [{ path: [], command: program }, ...commandPaths(program)]) {
    for (const [section, columns] of descriptionColumns(command.helpInformation())) {
      if (columns.size > 1)
        misaligned.push(`athanor ${path.join(' ')} (${section}): columns ${[...columns]}`);
    }
  }
  expect(misaligned).toEqual([]);
});

it("athanor --help lists every setting's variable once, all in one column", async () => {
  const { code, stdout } = await runCli(['--help']);
  expect(code).toBe(0);
  const environment = stdout.slice(stdout.indexOf('Environment'));
  const rows = environment.split('\n').filter((line) => /^ {2}[A-Z_]+/.test(line));
  const names = rows.map((line) => line.trim().split(/\s+/)[0]);
  for (const spec of Object.values(settingSpecs)) expect(names).toContain(spec.env);
  expect(new Set(names).size).toBe(names.length);
  const columns = new Set(rows.map((line) => line.length - line.slice(2).replace(/^\S+\s+/, '').length));
  expect(columns.size).toBe(1);
});
