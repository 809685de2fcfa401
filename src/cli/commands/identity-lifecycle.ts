import type { Command } from 'commander';
import { Option } from 'commander';
import { osActor } from '../../service/audit.js';
import * as identities from '../../service/identities.js';
import { confirm, wantsJson, withStore } from '../context.js';
import type { RefOptions } from '../identity-options.js';
import { identityOption, keyFrom, ref, typeOption } from '../identity-options.js';
import { printJson, printLine } from '../output.js';

/** `identity remove|disable|enable|set-expiry|verify`: an identity's life after it is added. */
export function addIdentityLifecycleVerbs(command: Command): void {
  command
    .command('remove')
    .description('remove an identity and its scopes; its tokens stop working')
    .addOption(typeOption())
    .addOption(identityOption())
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (options: RefOptions & { yes?: boolean }, cmd: Command) => {
      const identityRef = ref(options);
      await confirm(`remove ${options.type} identity '${options.identity}'`, options.yes);
      await withStore(cmd, (store) => identities.removeIdentity(store, osActor(), identityRef));
      if (wantsJson(cmd)) printJson({ removed: identityRef });
      else printLine(`removed ${options.type} identity '${options.identity}'`);
    });

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    command
      .command(verb)
      .description(
        disabled ? 'disable an identity: its key and tokens stop working' : 'enable a disabled identity',
      )
      .addOption(typeOption())
      .addOption(identityOption())
      .action(async (options: RefOptions, cmd: Command) => {
        await withStore(cmd, (store) =>
          identities.setIdentityDisabled(store, osActor(), ref(options), disabled),
        );
        if (wantsJson(cmd)) printJson({ kind: options.type, identifier: options.identity, disabled });
        else printLine(`${verb}d ${options.type} identity '${options.identity}'`);
      });
  }

  command
    .command('set-expiry')
    .description('set when an identity stops working (--never to clear)')
    .addOption(typeOption())
    .addOption(identityOption())
    .addOption(new Option('--at <when>', 'ISO 8601 instant').conflicts('never'))
    .option('--never', 'the identity never expires')
    .option('--force', 'accept an instant in the past (the identity stops working at once)')
    .action(async (options: RefOptions & { at?: string; never?: boolean; force?: boolean }, cmd: Command) => {
      if (!options.at && !options.never) cmd.error('give --at <when> or --never', { exitCode: 2 });
      await withStore(cmd, (store) =>
        identities.setIdentityExpiry(store, osActor(), ref(options), options.at, {
          allowPast: options.force === true,
        }),
      );
      if (wantsJson(cmd))
        printJson({ kind: options.type, identifier: options.identity, expiresAt: options.at ?? null });
      else printLine(`${options.type} identity '${options.identity}' expires: ${options.at ?? 'never'}`);
    });

  command
    .command('verify')
    .description('check that a key authenticates (exit 0) or not (exit 4)')
    .addOption(typeOption())
    .addOption(identityOption())
    .addOption(
      new Option('-k, --key <key>', "the key; '-' reads it from standard input").makeOptionMandatory(),
    )
    .action(async (options: RefOptions & { key: string }, cmd: Command) => {
      const key = (await keyFrom(options.key)) ?? '';
      const who = await withStore(cmd, (store) => identities.authenticateIdentity(store, ref(options), key));
      if (wantsJson(cmd)) printJson({ kind: who.kind, identifier: who.identifier, scopes: who.scopes });
      else printLine(`the key authenticates ${who.kind} identity '${who.identifier}'`);
    });
}
