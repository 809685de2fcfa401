import { Option } from 'commander';
import type { IdentityKind } from '../domain/identifier.js';
import { identityKinds, parseIdentifier } from '../domain/identifier.js';
import type { IdentityView } from '../service/identities.js';
import type { IdentityQuotas } from '../service/identity-quotas.js';
import { collect, readStdin } from './context.js';
import { note, printLine, printTable } from './output.js';

// The options and output the identity commands share.

export interface RefOptions {
  type: IdentityKind;
  identity: string;
}

export const typeOption = () =>
  new Option('-t, --type <type>', 'identity type')
    .choices([...identityKinds])
    .default('user' as IdentityKind);
export const identityOption = () =>
  new Option('-i, --identity <id>', 'identity identifier').makeOptionMandatory();
export const keyOption = () =>
  new Option(
    '-k, --key <key>',
    "the key; '-' reads it from standard input; omit to generate one, printed once",
  );
export const scopeOption = () =>
  new Option('-s, --scope <scope>', 'an org-campaign-project scope (repeatable)')
    .argParser(collect)
    .makeOptionMandatory();

export function ref(options: RefOptions) {
  return { kind: options.type, identifier: parseIdentifier(options.identity) };
}

export async function keyFrom(option: string | undefined): Promise<string | undefined> {
  return option === '-' ? readStdin() : option;
}

export function printGeneratedKey(kind: IdentityKind, identifier: string, key: string): void {
  note(`Generated a key for ${kind} identity '${identifier}'. It is shown once and stored only as a hash:`);
  printLine(key);
}

export function formatStatus(identity: IdentityView, now = new Date()): string {
  if (identity.disabled) return 'disabled';
  if (identity.expiresAt && new Date(identity.expiresAt) <= now) return 'expired';
  return 'active';
}

/** How a quota reads in tables and `identity show`. */
export function formatQuotas(quotas: IdentityQuotas): string {
  const parts = [
    quotas.maxWaitingTasks === null ? undefined : `waiting tasks ≤ ${quotas.maxWaitingTasks}`,
    quotas.maxNetworks === null ? undefined : `networks ≤ ${quotas.maxNetworks}`,
  ].filter((p) => p !== undefined);
  return parts.length ? parts.join(', ') : 'none';
}

export function printIdentities(
  list: readonly (IdentityView & { roles: readonly string[]; quotas: IdentityQuotas })[],
): void {
  printTable(
    list,
    [
      { header: 'TYPE', value: (i) => i.kind },
      { header: 'IDENTITY', value: (i) => i.identifier },
      { header: 'STATUS', value: (i) => formatStatus(i) },
      { header: 'EXPIRES', value: (i) => i.expiresAt ?? '-' },
      { header: 'SCOPES', value: (i) => (i.scopes.length ? i.scopes.join(' ') : '-') },
      { header: 'ROLES', value: (i) => (i.roles.length ? i.roles.join(' ') : '-') },
      { header: 'QUOTAS', value: (i) => (formatQuotas(i.quotas) === 'none' ? '-' : formatQuotas(i.quotas)) },
    ],
    'no identities',
  );
}
