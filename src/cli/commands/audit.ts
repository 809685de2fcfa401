import { Command } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import { listAudit } from '../../service/audit.js';
import { integerOption, wantsJson, withStore } from '../context.js';
import { printJson, printTable } from '../output.js';

const units: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `--since` takes an ISO instant or a duration back from now: `30m`, `12h`, `7d`, `2w`. */
export function parseSince(text: string, now = Date.now()): string {
  const relative = /^(\d+)([mhdw])$/.exec(text);
  if (relative)
    return new Date(now - Number(relative[1]) * (units[relative[2] as string] ?? 0)).toISOString();
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) {
    throw new AthanorError(
      'invalid_argument',
      `--since '${text}': use an ISO 8601 instant or a duration like 12h, 7d`,
    );
  }
  return at.toISOString();
}

export function auditCommand(): Command {
  const command = new Command('audit').description('the record of every administrative action');
  command
    .command('list')
    .description('list audit entries, oldest first')
    .option('--since <when>', 'ISO 8601 instant or a duration back from now (30m, 12h, 7d)')
    .option('--action <prefix>', "only actions starting with this, e.g. 'identity'")
    .option('--limit <n>', 'at most this many (the newest)', integerOption('--limit'), 1000)
    .action(async (options: { since?: string; action?: string; limit: number }, cmd: Command) => {
      const since = options.since === undefined ? undefined : parseSince(options.since);
      const entries = await withStore(cmd, (store) =>
        listAudit(store, { since, action: options.action, limit: options.limit }),
      );
      if (wantsJson(cmd)) {
        printJson(
          entries.map((e) => ({ ...e, details: e.details ? (JSON.parse(e.details) as unknown) : null })),
        );
        return;
      }
      printTable(
        entries,
        [
          { header: 'AT', value: (e) => e.at },
          { header: 'ACTOR', value: (e) => e.actor },
          { header: 'ACTION', value: (e) => e.action },
          { header: 'TARGET', value: (e) => e.target ?? '-' },
          { header: 'OUTCOME', value: (e) => e.outcome },
          { header: 'DETAILS', value: (e) => e.details ?? '' },
        ],
        'no audit entries',
      );
    });
  return command;
}
