import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { userClient, wantsJson } from '../context.js';
import { printJson, printTable } from '../output.js';
import { resultDownloadCommand } from './result-download.js';

export function resultCommand(): Command {
  const command = new Command('result').description("list and download tasks' results (user API)");

  command
    .command('list')
    .argument('<task>')
    .description("a task's results, one per attempt")
    .action(async (task: string, _options: unknown, cmd: Command) => {
      const results = await userClient(cmd).taskResults(task);
      if (wantsJson(cmd)) printJson(results);
      else
        printTable(
          results,
          [
            { header: 'RESULT', value: (r) => r.id },
            { header: 'ATTEMPT', value: (r) => String(r.attempt) },
            { header: 'OUTCOME', value: (r) => r.outcome },
            { header: 'BYTES', value: (r) => String(r.sizeBytes ?? '-') },
            { header: 'ERROR', value: (r) => (r.error ?? '').split('\n')[0] ?? '' },
          ],
          'no results',
        );
    });

  command
    .command('get')
    .argument('<result>')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .description("download a result's bytes (streamed)")
    .action(async (id: string, options: { output?: string }, cmd: Command) => {
      const stream = await userClient(cmd).downloadResult(id);
      await pipeline(stream, options.output ? createWriteStream(options.output) : process.stdout);
    });

  command.addCommand(resultDownloadCommand());

  return command;
}
