import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/resolve-config.js';
import { AthanorError } from '../../domain/errors.js';
import type { ObjectStore } from '../../objects/object-store.js';
import type { BackupTarget } from '../../ops/backup/target.js';
import type { Authenticator } from '../../service/authenticator.js';
import type { Store } from '../../store/open-store.js';
import { prepareErrorReply, toAthanorError } from '../errors.js';
import { consoleAsset } from './assets.js';
import type { ConsoleContext } from './context.js';
import { field, formOf, sendPage } from './context.js';
import { html } from './html.js';
import { notice, page } from './layout.js';
import { auditPages } from './audit-pages.js';
import { backupPages } from './backup-pages.js';
import { computePages } from './compute-pages.js';
import { identityPages } from './identity-pages.js';
import { maintenancePages } from './maintenance-pages.js';
import { networkPages } from './network-pages.js';
import { overviewPage } from './overview-page.js';
import { taskPages } from './task-pages.js';
import { ConsoleSessions, tokensEqual } from './session.js';

export interface ConsoleOptions {
  readonly store: Store;
  readonly config: Config;
  readonly authenticator: Authenticator;
  readonly objects: ObjectStore;
  /** The server's backup target, opened on first use. */
  readonly openBackupTarget: () => BackupTarget;
  /** Sign-in attempts per minute per client address. */
  readonly tokenRateLimit: number;
}

/**
 * Nothing but this origin: no inline script or style, no frames, forms post only here. Pico's
 * checkbox and select marks are data: SVG images.
 */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The web console: server-rendered pages over the same service functions as the API and CLI. */
export const consolePlugin: FastifyPluginAsync<ConsoleOptions & { prefix: string }> = async (
  app,
  options,
) => {
  const base = options.prefix;
  const sessions = await ConsoleSessions.open(options.store, options.authenticator, base);
  const ctx: ConsoleContext = {
    store: options.store,
    config: options.config,
    objects: options.objects,
    openBackupTarget: options.openBackupTarget,
    sessions,
    base,
  };
  await app.register(cookie);

  app.addHook('onRequest', async (request, reply) => {
    void reply
      .header('content-security-policy', contentSecurityPolicy)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin');
    if (!request.url.startsWith(`${base}/assets/`)) void reply.header('cache-control', 'no-store');
  });

  app.addHook('preHandler', async (request, reply) => {
    const config = request.routeOptions.config;
    if (config.consolePublic) return;
    const user = await sessions.current(request);
    if (!user) {
      if (request.method === 'GET' || request.method === 'HEAD') {
        const next = request.url.split('#')[0] ?? '';
        return reply.redirect(`${base}/signin?next=${encodeURIComponent(next)}`, 303);
      }
      throw new AthanorError('unauthenticated', 'your session has ended: sign in again');
    }
    request.consoleUser = user;
    if (config.consoleAdmin && !user.admin) {
      throw new AthanorError(
        'forbidden',
        `this page is for operators: an operator can grant the admin role with 'athanor identity add-role -i ${user.principal.identifier} -r admin'`,
      );
    }
    if (request.method === 'POST' && !tokensEqual(user.csrf, formOf(request)._csrf)) {
      throw new AthanorError(
        'forbidden',
        "the form's CSRF token is missing or wrong, so nothing was done: reload the page and try again",
      );
    }
  });

  app.setErrorHandler(async (error, request, reply) => {
    const known = prepareErrorReply(error, request, reply);
    const frame = { base, user: request.consoleUser };
    const body = html`${notice(known.message, 'error')}
      <p>
        Error code <code>${known.code}</code>.
        <a href="${request.method === 'GET' ? `${base}/` : (request.headers.referer ?? `${base}/`)}"
          >Go back</a
        >
      </p>`;
    return sendPage(reply, page(frame, titleOf(known.status), body), known.status);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const body = html`${notice(`there is no console page ${request.url.split('?')[0]}`, 'error')}
      <p><a href="${base}/">Overview</a></p>`;
    return sendPage(reply, page({ base, user: undefined }, 'Not found', body), 404);
  });

  const publicRoute = { config: { consolePublic: true } };
  app.get('/assets/:name', publicRoute, async (request, reply) => {
    const asset = consoleAsset((request.params as { name: string }).name);
    if (!asset) throw new AthanorError('not_found', 'no such console asset');
    return reply.header('cache-control', 'public, max-age=3600').type(asset.contentType).send(asset.body);
  });

  app.get('/signin', publicRoute, async (request, reply) => signinPage(request, reply, undefined));

  app.post(
    '/signin',
    {
      config: {
        consolePublic: true,
        writesInMaintenance: true,
        rateLimit: { max: options.tokenRateLimit, timeWindow: '1 minute' },
      },
    },
    async (request, reply) => {
      const form = formOf(request);
      if (!sessions.signinTokenMatches(request, form._csrf)) {
        throw new AthanorError(
          'forbidden',
          "the sign-in form's CSRF token is missing or wrong, so nothing was done: reload the page and try again",
        );
      }
      const identifier = field(form, 'identifier') ?? '';
      const key = typeof form.key === 'string' ? form.key : '';
      let session;
      try {
        session = await sessions.signIn(identifier, key, request.ip);
      } catch (error) {
        const known = toAthanorError(error);
        if (known.code !== 'unauthenticated') throw error;
        return signinPage(request, reply, known.message, 401);
      }
      sessions.setSession(request, reply, session.token, session.maxAgeSeconds);
      return reply.redirect(safeNext(base, (request.query as { next?: string }).next), 303);
    },
  );

  app.post(
    '/signout',
    { config: { consolePublic: true, writesInMaintenance: true } },
    async (request, reply) => {
      await sessions.endSession(request, reply);
      return reply.redirect(`${base}/signin`, 303);
    },
  );

  // One plugin per page group; each inherits the session, CSRF and error handling above.
  for (const pages of [
    overviewPage,
    networkPages,
    taskPages,
    computePages,
    identityPages,
    auditPages,
    backupPages,
    maintenancePages,
  ])
    await app.register(pages, ctx);

  async function signinPage(
    request: FastifyRequest,
    reply: FastifyReply,
    error: string | undefined,
    status = 200,
  ) {
    const token = sessions.signinChallenge(request, reply);
    const next = (request.query as { next?: string }).next;
    const body = html`${notice(error, 'error')}
      <form method="post" action="${base}/signin${next ? `?next=${encodeURIComponent(next)}` : ''}">
        <input type="hidden" name="_csrf" value="${token}" />
        <label>Identity <input name="identifier" autocomplete="username" required autofocus /></label>
        <label>Key <input name="key" type="password" autocomplete="current-password" required /></label>
        <button type="submit">Sign in</button>
      </form>
      <p>
        <small
          >Sign in with a user identity and its key, as for the API. An operator makes one with
          <code>athanor identity add</code>.</small
        >
      </p>`;
    return sendPage(reply, page({ base, user: undefined }, 'Sign in', body), status);
  }
};

/** Only a path inside the console: a `next` naming another site or `//host` is ignored. */
function safeNext(base: string, next: string | undefined): string {
  if (next && next.startsWith(`${base}/`) && !next.startsWith('//') && !/[\\\r\n]/.test(next)) return next;
  return `${base}/`;
}

function titleOf(status: number): string {
  if (status === 401) return 'Signed out';
  if (status === 403) return 'Refused';
  if (status === 404) return 'Not found';
  if (status === 503) return 'Unavailable';
  if (status >= 500) return 'Server error';
  return 'Not done';
}

/** Registers the console under `config.consolePath` unless it is turned off. */
export async function registerConsole(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  if (options.config.consolePath === undefined) return;
  await app.register(consolePlugin, { ...options, prefix: options.config.consolePath });
}
