import { Command } from 'commander';
import { AthanorError } from '../../domain/errors.js';
import { parseDuration } from '../../domain/parse-duration.js';
import { listAudit } from '../../service/audit.js';
import { integerOption, wantsJson, withStore } from '../context.js';
import { printJson, printTable } from '../output.js';

/**
 * `--since` takes an ISO instant or a duration back from now in the one duration syntax
 * (`30s`, `30m`, `12h`, `7d`, `1d12h`, `2w`).
 */
export function parseSince(text: string, now = Date.now()): string {
  if (/^\s*\d/.test(text) && /[smhdw]\s*$/i.test(text))
    return new Date(now - parseDuration(text, '--since')).toISOString();
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) {
    throw new AthanorError(
      'invalid_argument',
      `--since '${text}': use an ISO 8601 instant or a duration like 30s, 12h, 7d or 1d12h`,
    );
  }
  return at.toISOString();
}

export function auditCommand(): Command {
  const command = new Command('audit').description('the record of every administrative action');
  command
    .command('list')
    .description('list audit entries, oldest first')
    .option('--since <when>', 'ISO 8601 instant or a duration back from now (30s, 12h, 7d, 1d12h)')
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
