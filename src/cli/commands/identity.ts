import { Command, Option } from 'commander';
import type { IdentityKind } from '../../domain/identifier.js';
import { identityKinds } from '../../domain/identifier.js';
import { firstRunKeyPath, removeFirstRunKey } from '../../ops/first-run-key.js';
import { osActor } from '../../service/audit.js';
import * as identities from '../../service/identities.js';
import * as identityQuotas from '../../service/identity-quotas.js';
import * as identityRoles from '../../service/identity-roles.js';
import { collect, wantsJson, withStore } from '../context.js';
import { bold, note, printJson, printLine } from '../output.js';
import { addIdentityLifecycleVerbs } from './identity-lifecycle.js';
import { setQuotaCommand } from './identity-quota.js';
import type { RefOptions } from '../identity-options.js';
import {
  formatQuotas,
  formatStatus,
  identityOption,
  keyFrom,
  keyOption,
  printGeneratedKey,
  printIdentities,
  ref,
  scopeOption,
  typeOption,
} from '../identity-options.js';

export function identityCommand(): Command {
  const command = new Command('identity').description(
    'manage user and compute identities, their keys and scopes',
  );

  command
    .command('add')
    .description('add an identity with a key (stored only as an argon2id hash)')
    .addOption(typeOption())
    .addOption(identityOption())
    .addOption(keyOption())
    .addOption(new Option('-s, --scope <scope>', 'grant a scope at once (repeatable)').argParser(collect))
    .option('--expires <when>', 'ISO 8601 instant after which the key stops working')
    .action(
      async (options: RefOptions & { key?: string; scope?: string[]; expires?: string }, cmd: Command) => {
        const key = await keyFrom(options.key);
        const result = await withStore(cmd, (store) =>
          identities.addIdentity(store, osActor(), {
            ...ref(options),
            key,
            scopes: options.scope,
            expiresAt: options.expires,
          }),
        );
        if (wantsJson(cmd)) {
          printJson({ ...result.identity, ...(result.generatedKey ? { key: result.generatedKey } : {}) });
          return;
        }
        if (result.generatedKey) printGeneratedKey(options.type, options.identity, result.generatedKey);
        else printLine(`added ${options.type} identity '${options.identity}'`);
      },
    );

  command
    .command('set-key')
    .description('rotate the key of an identity, keeping its scopes; tokens issued before stop working')
    .addOption(typeOption())
    .addOption(identityOption())
    .addOption(keyOption())
    .action(async (options: RefOptions & { key?: string }, cmd: Command) => {
      const key = await keyFrom(options.key);
      const { result, removedKeyFile } = await withStore(cmd, async (store, config) => {
        const result = await identities.setIdentityKey(store, osActor(), ref(options), key);
        // The first-run key file of 'athanor up' holds the old key: it has no use any more.
        const isFirstRunAdmin = options.type === 'user' && options.identity === 'admin';
        const removedKeyFile =
          isFirstRunAdmin && (await removeFirstRunKey(config.dataDir)) ? firstRunKeyPath(config.dataDir) : '';
        return { result, removedKeyFile };
      });
      if (removedKeyFile) note(`deleted ${removedKeyFile}, which held the old key`);
      if (wantsJson(cmd)) {
        printJson({
          kind: options.type,
          identifier: options.identity,
          ...(result.generatedKey ? { key: result.generatedKey } : {}),
        });
        return;
      }
      if (result.generatedKey) printGeneratedKey(options.type, options.identity, result.generatedKey);
      else
        printLine(
          `set a new key for ${options.type} identity '${options.identity}'; its scopes are unchanged`,
        );
    });

  command
    .command('add-scope')
    .description('grant scopes to an identity')
    .addOption(typeOption())
    .addOption(identityOption())
    .addOption(scopeOption())
    .action(async (options: RefOptions & { scope: string[] }, cmd: Command) => {
      const result = await withStore(cmd, (store) =>
        identities.addIdentityScopes(store, osActor(), ref(options), options.scope),
      );
      if (wantsJson(cmd)) printJson(result);
      else printLine(`${options.type} identity '${options.identity}' scopes: ${result.scopes.join(' ')}`);
    });

  command
    .command('remove-scope')
    .description('withdraw scopes from an identity; tokens issued before stop working')
    .addOption(typeOption())
    .addOption(identityOption())
    .addOption(scopeOption())
    .action(async (options: RefOptions & { scope: string[] }, cmd: Command) => {
      const result = await withStore(cmd, (store) =>
        identities.removeIdentityScopes(store, osActor(), ref(options), options.scope),
      );
      if (wantsJson(cmd)) printJson(result);
      else {
        const notHeld = options.scope.filter((s) => !result.removed.includes(s));
        if (notHeld.length) note(`not held, so not removed: ${notHeld.join(' ')}`);
        printLine(
          `${options.type} identity '${options.identity}' scopes: ${result.scopes.length ? result.scopes.join(' ') : '(none)'}`,
        );
      }
    });

  for (const [verb, grant] of [
    ['add-role', true],
    ['remove-role', false],
  ] as const) {
    command
      .command(verb)
      .description(
        grant
          ? "grant a role to a user identity ('admin' opens the console's operator pages)"
          : 'withdraw a role from a user identity; its tokens and console sessions issued before stop working',
      )
      .addOption(typeOption())
      .addOption(identityOption())
      .addOption(
        new Option('-r, --role <role>', 'the role').choices([...identityRoles.roles]).makeOptionMandatory(),
      )
      .action(async (options: RefOptions & { role: string }, cmd: Command) => {
        const role = identityRoles.parseRole(options.role);
        const result = await withStore(cmd, async (store): Promise<{ roles: string[] }> =>
          grant
            ? identityRoles.grantRole(store, osActor(), ref(options), role)
            : identityRoles.revokeRole(store, osActor(), ref(options), role),
        );
        if (wantsJson(cmd))
          printJson({ kind: options.type, identifier: options.identity, roles: result.roles });
        else
          printLine(
            `${options.type} identity '${options.identity}' roles: ${result.roles.length ? result.roles.join(' ') : '(none)'}`,
          );
      });
  }

  command
    .command('list-scope')
    .description("list an identity's scopes")
    .addOption(typeOption())
    .addOption(identityOption())
    .action(async (options: RefOptions, cmd: Command) => {
      const scopes = await withStore(cmd, (store) => identities.listIdentityScopes(store, ref(options)));
      if (wantsJson(cmd)) printJson(scopes);
      else for (const scope of scopes) printLine(scope);
    });

  command
    .command('list')
    .description('list identities')
    .addOption(new Option('-t, --type <type>', 'only this type').choices([...identityKinds]))
    .action(async (options: { type?: IdentityKind }, cmd: Command) => {
      const list = await withStore(cmd, async (store) => {
        const roles = await identityRoles.listRolesByIdentity(store);
        const quotas = await identityQuotas.listQuotasByIdentity(store);
        return (await identities.listIdentities(store, options.type)).map((i) => ({
          ...i,
          roles: roles.get(`${i.kind}:${i.identifier}`) ?? [],
          quotas: quotas.get(`${i.kind}:${i.identifier}`) ?? identityQuotas.noQuotas,
        }));
      });
      if (wantsJson(cmd)) printJson(list);
      else printIdentities(list);
    });

  command
    .command('show')
    .description('show one identity')
    .addOption(typeOption())
    .addOption(identityOption())
    .action(async (options: RefOptions, cmd: Command) => {
      const identity = await withStore(cmd, async (store) => ({
        ...(await identities.showIdentity(store, ref(options))),
        roles: await identityRoles.listIdentityRoles(store, ref(options)),
        quotas: await identityQuotas.identityQuotas(store, ref(options)),
      }));
      if (wantsJson(cmd)) {
        printJson(identity);
        return;
      }
      printLine(`${bold('identity')}  ${identity.kind}:${identity.identifier}`);
      printLine(`${bold('status')}    ${formatStatus(identity)}`);
      printLine(`${bold('expires')}   ${identity.expiresAt ?? 'never'}`);
      printLine(`${bold('created')}   ${identity.createdAt}`);
      printLine(`${bold('updated')}   ${identity.updatedAt}`);
      printLine(`${bold('scopes')}    ${identity.scopes.length ? identity.scopes.join(' ') : '(none)'}`);
      printLine(`${bold('roles')}     ${identity.roles.length ? identity.roles.join(' ') : '(none)'}`);
      printLine(`${bold('quotas')}    ${formatQuotas(identity.quotas)}`);
    });

  addIdentityLifecycleVerbs(command);

  command.addCommand(setQuotaCommand());

  return command;
}
