import { Command, Option } from 'commander';
import type { IdentityKind } from '../../domain/identifier.js';
import { identityKinds, parseIdentifier } from '../../domain/identifier.js';
import { osActor } from '../../service/audit.js';
import { maxQuotaLimit, setIdentityQuotas } from '../../service/identity-quotas.js';
import { integerOption, wantsJson, withStore } from '../context.js';
import { formatQuotas } from '../identity-options.js';
import { printJson, printLine } from '../output.js';

/** A limit flag: a whole number, or `none` to remove the limit (commander keeps no null values). */
function limitOption(flag: string) {
  const whole = integerOption(flag, { max: maxQuotaLimit });
  return (value: string): number | 'none' => (value.trim().toLowerCase() === 'none' ? 'none' : whole(value));
}

function limit(value: number | 'none' | undefined): number | null | undefined {
  return value === 'none' ? null : value;
}

/** `athanor identity set-quota`: limits on what one user identity may have queued at once. */
export function setQuotaCommand(): Command {
  return new Command('set-quota')
    .description(
      'limit the waiting tasks and networks a user identity may have at once (none removes a limit; quotas are off by default)',
    )
    .addOption(
      new Option('-t, --type <type>', 'identity type')
        .choices([...identityKinds])
        .default('user' as IdentityKind),
    )
    .addOption(new Option('-i, --identity <id>', 'identity identifier').makeOptionMandatory())
    .addOption(
      new Option('--max-waiting-tasks <n>', "most of its tasks waiting at once, or 'none'").argParser(
        limitOption('--max-waiting-tasks'),
      ),
    )
    .addOption(
      new Option('--max-networks <n>', "most of its networks not deleted at once, or 'none'").argParser(
        limitOption('--max-networks'),
      ),
    )
    .action(
      async (
        options: {
          type: IdentityKind;
          identity: string;
          maxWaitingTasks?: number | 'none';
          maxNetworks?: number | 'none';
        },
        cmd: Command,
      ) => {
        if (options.maxWaitingTasks === undefined && options.maxNetworks === undefined) {
          cmd.error('give --max-waiting-tasks <n|none> or --max-networks <n|none>', { exitCode: 2 });
        }
        const ref = { kind: options.type, identifier: parseIdentifier(options.identity) };
        const quotas = await withStore(cmd, (store) =>
          setIdentityQuotas(store, osActor(), ref, {
            maxWaitingTasks: limit(options.maxWaitingTasks),
            maxNetworks: limit(options.maxNetworks),
          }),
        );
        if (wantsJson(cmd)) printJson({ kind: ref.kind, identifier: ref.identifier, quotas });
        else printLine(`${ref.kind} identity '${ref.identifier}' quotas: ${formatQuotas(quotas)}`);
      },
    );
}
