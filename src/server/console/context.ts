import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { BackupTarget } from '../../ops/backup/target.js';
import { principalName } from '../../auth/principal.js';
import { recordAudit, recordFailure } from '../../service/audit.js';
import type { Store } from '../../store/open-store.js';
import type { Html } from './html.js';
import type { ConsoleSessions, ConsoleUser } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    consoleUser?: ConsoleUser;
  }
  interface FastifyContextConfig {
    /** A console route anyone may open (assets, sign-in). */
    consolePublic?: boolean;
    /** A console route only identities with the admin role may open. */
    consoleAdmin?: boolean;
  }
}

/** What every console page and action works with. */
export interface ConsoleContext {
  readonly store: Store;
  readonly config: Config;
  readonly objects: ObjectStore;
  /** The server's backup target, opened on first use. */
  readonly openBackupTarget: () => BackupTarget;
  readonly sessions: ConsoleSessions;
  /** The console's URL path, e.g. `/console`. */
  readonly base: string;
}

export type FormBody = Readonly<Record<string, string | string[] | undefined>>;

export function formOf(request: FastifyRequest): FormBody {
  const body = request.body;
  return body && typeof body === 'object' ? (body as FormBody) : {};
}

/** One form field as text (the first when repeated); undefined when absent or blank. */
export function field(body: FormBody, name: string): string | undefined {
  const value = body[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text.trim() === '' ? undefined : text.trim();
}

/** A repeated form field (ticked boxes) as a list. */
export function fields(body: FormBody, name: string): string[] {
  const value = body[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => v.trim()).filter((v) => v !== '');
}

export function requireField(body: FormBody, name: string, label = name): string {
  const value = field(body, name);
  if (value === undefined) throw new AthanorError('invalid_argument', `fill in ${label}`);
  return value;
}

export function userOf(request: FastifyRequest): ConsoleUser {
  if (!request.consoleUser) throw new AthanorError('unauthenticated', 'sign in to use the console');
  return request.consoleUser;
}

export function actorOf(request: FastifyRequest): string {
  return principalName(userOf(request).principal);
}

export function sendPage(reply: FastifyReply, page: Html, status = 200): FastifyReply {
  return reply.status(status).type('text/html; charset=utf-8').send(page.text);
}

/** Back to a console page after an action, with a one-line message shown there. */
export function redirectBack(reply: FastifyReply, url: string, message: string): FastifyReply {
  const separator = url.includes('?') ? '&' : '?';
  return reply.redirect(`${url}${separator}done=${encodeURIComponent(message)}`, 303);
}

/**
 * Runs a console action through its service function and records it in the audit log, with its
 * outcome, as the API and CLI actions are. Details hold names and counts only, never secrets.
 */
export async function auditedAction<T>(
  ctx: ConsoleContext,
  request: FastifyRequest,
  event: { action: string; target?: string },
  run: () => Promise<T>,
  details?: (result: T) => Record<string, unknown>,
): Promise<T> {
  const audit = { actor: actorOf(request), action: event.action, target: event.target };
  let result: T;
  try {
    result = await run();
  } catch (error) {
    await recordFailure(ctx.store, audit, error);
    throw error;
  }
  await recordAudit(ctx.store, {
    ...audit,
    outcome: 'ok',
    details: { via: 'console', ...(details ? details(result) : {}) },
  });
  return result;
}
