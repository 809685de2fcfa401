import { Command } from 'commander';
import { eventTypes } from '../../domain/event-types.js';
import { integerOption, userClient, wantsJson } from '../context.js';
import { printJson, printLine } from '../output.js';
import { untilSignal } from '../signals.js';

interface TailOptions {
  scope?: string;
  type?: string;
  network?: string;
  after?: number;
}

export function eventsCommand(): Command {
  const command = new Command('events').description('follow the event log of your scopes (user API)');
  command
    .command('tail')
    .description(
      'print events as they happen, one JSON line each with --json (resumes after a dropped connection)',
    )
    .option('-s, --scope <scope>', 'only events in this scope (wildcards allowed)')
    .option('--type <types>', `only these types, comma separated (${eventTypes.join(', ')})`)
    .option('--network <network>', "only this network's events")
    .option(
      '--after <id>',
      'start after this event id (default: from the oldest kept)',
      integerOption('--after'),
    )
    .action(async (options: TailOptions, cmd: Command) => {
      const client = userClient(cmd);
      const json = wantsJson(cmd);
      const stop = new AbortController();
      void untilSignal().then(() => stop.abort());
      {
        const query = {
          ...(options.after === undefined ? {} : { after: options.after }),
          ...(options.scope === undefined ? {} : { scope: options.scope }),
          ...(options.type === undefined ? {} : { type: options.type }),
          ...(options.network === undefined ? {} : { network: options.network }),
        };
        for await (const event of client.followEvents(query, stop.signal)) {
          if (json) process.stdout.write(`${JSON.stringify(event)}\n`);
          else
            printLine(
              [
                String(event.id),
                event.at,
                event.type,
                event.scope,
                event.network ?? '-',
                event.subject ?? '-',
              ].join('  '),
            );
        }
      }
    });
  command
    .command('types')
    .description('the event types')
    .action((_options: unknown, cmd: Command) => {
      if (wantsJson(cmd)) printJson(eventTypes);
      else for (const type of eventTypes) printLine(type);
    });
  return command;
}
