import { Command } from 'commander';
import { parseDuration } from '../../domain/parse-duration.js';
import { osActor } from '../../service/audit.js';
import { rotateJwtSecret } from '../../service/jwt-secrets.js';
import { commandConfig, wantsJson, withStore } from '../context.js';
import { printJson, printLine } from '../output.js';

export function tokenCommand(): Command {
  const command = new Command('token').description('the secret that signs API tokens');
  command
    .command('rotate-secret')
    .description(
      'replace the stored token signing secret; tokens signed with the old one keep working for the grace period',
    )
    .option('--grace <duration>', 'how long old tokens stay valid, e.g. 30m (default: the token lifetime)')
    .action(async (options: { grace?: string }, cmd: Command) => {
      const config = commandConfig(cmd);
      const graceSeconds =
        options.grace === undefined
          ? config.tokenTtlSeconds
          : Math.ceil(parseDuration(options.grace, '--grace') / 1000);
      const result = await withStore(cmd, (store) =>
        rotateJwtSecret(store, osActor(), { configured: config.jwtSecret, graceSeconds }),
      );
      if (wantsJson(cmd)) printJson(result);
      else
        printLine(
          `rotated the token signing secret; tokens signed before stay valid until ${result.previousValidUntil}`,
        );
    });
  return command;
}
