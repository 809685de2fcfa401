import type { FastifyRequest } from 'fastify';
import { AthanorError } from '../../domain/errors.js';
import { taskStatuses } from '../../domain/task-state.js';
import type { TaskStatus } from '../../domain/task-state.js';
import type { ConsoleContext } from './context.js';
import { userOf } from './context.js';
import type { Html } from './html.js';
import { html } from './html.js';
import { statusBadge } from './layout.js';
import type { IdentityKind } from '../../domain/identifier.js';
import { identityKinds, parseIdentifier } from '../../domain/identifier.js';
import type { BackupFreshness } from '../../ops/schedule/backup-freshness.js';
import { backupFreshness } from '../../ops/schedule/backup-freshness.js';
import type * as identities from '../../service/identities.js';

/** What the console's page groups share: query and form readers, menus, the page frame. */

export type Query = Readonly<Record<string, string | undefined>>;

export function queryOf(request: FastifyRequest): Query {
  return (request.query ?? {}) as Query;
}

export function pick<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  label: string,
): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new AthanorError('invalid_argument', `${label} '${value}' is not one of: ${allowed.join(', ')}`);
  }
  return value as T;
}

export function number(
  text: string | undefined,
  label: string,
  min: number,
  max: number,
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new AthanorError(
      'invalid_argument',
      `${label} must be a number from ${min} to ${max}, got '${text}'`,
    );
  }
  return value;
}

export function countsLine(counts: Partial<Record<TaskStatus, number>>): Html {
  const shown = taskStatuses.filter((s) => (counts[s] ?? 0) > 0);
  if (shown.length === 0) return html`<span class="empty">no tasks</span>`;
  return html`${shown.map((s) => html`${statusBadge(s)} <span data-count="${s}">${counts[s]}</span> `)}`;
}

export function select(
  name: string,
  label: string,
  options: readonly string[],
  current: string | undefined,
): Html {
  return html`<label
    >${label}
    <select name="${name}">
      <option value="">any</option>
      ${options.map((o) => html`<option value="${o}" ${o === current ? html`selected` : ''}>${o}</option>`)}
    </select></label
  >`;
}

export async function backupEntries(ctx: ConsoleContext) {
  const { listBackups } = await import('../../ops/backup/backup-target.js');
  return listBackups(ctx.openBackupTarget());
}

/** The newest backup and the newest one a restore drill proved, for the overview. */
export async function backupSummary(ctx: ConsoleContext): Promise<BackupFreshness | undefined> {
  try {
    return backupFreshness(await backupEntries(ctx), new Date());
  } catch {
    // An unreachable target must not take the overview down; the backups page shows the error.
    return undefined;
  }
}

export function identityStatus(identity: identities.IdentityView): string {
  if (identity.disabled) return 'disabled';
  if (identity.expiresAt && new Date(identity.expiresAt) <= new Date()) return 'expired';
  return 'active';
}

export function refOf(request: FastifyRequest): identities.IdentityRef {
  const { kind, id } = request.params as { kind: string; id: string };
  if (!(identityKinds as readonly string[]).includes(kind)) {
    throw new AthanorError(
      'invalid_argument',
      `'${kind}' is not an identity type: use ${identityKinds.join(' or ')}`,
    );
  }
  return { kind: kind as IdentityKind, identifier: parseIdentifier(id) };
}

export function scopesOf(text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).filter((s) => s !== '');
}

export function isoOrThrow(text: string, label: string): string {
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) {
    throw new AthanorError(
      'invalid_argument',
      `${label} '${text}' is not a date; use ISO 8601, e.g. 2026-01-31T00:00Z`,
    );
  }
  return at.toISOString();
}

/** The frame of a console page: where the console lives, who is signed in, which section is lit. */
export function frameOf(base: string) {
  return (request: FastifyRequest, section: string) => ({ base, user: userOf(request), section });
}
