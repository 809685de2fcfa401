import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { backupFreshness } from '../../ops/schedule/backup-freshness.js';
import type { ConsoleContext } from './context.js';
import { actorOf, redirectBack, sendPage, userOf } from './context.js';
import { html } from './html.js';
import { csrfField, notice, page, statusBadge, table, time } from './layout.js';
import { backupEntries, frameOf } from './page-helpers.js';
import type { Query } from './page-helpers.js';

function showBackups(ctx: ConsoleContext): RouteHandlerMethod {
  const { base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
    const user = userOf(request);
    const q = request.query as Query;
    // The setting as written: a target that cannot be opened is still named on the page.
    const targetUrl = ctx.config.backupTarget;
    let listing;
    try {
      const entries = await backupEntries(ctx);
      listing = html` ${(() => {
        const f = backupFreshness(entries, new Date());
        return html`<p>
          Newest:
          ${f.newest ? html`<code>${f.newest.id}</code> ${time(f.newest.createdAt.toISOString())}` : 'none'};
          last restore drill passed:
          ${f.newestVerified ? html`<code>${f.newestVerified.id}</code> ${time(f.newestVerified.createdAt.toISOString())}` : 'never'}
        </p>`;
      })()}
      ${table(
        ['Backup', 'Rows', 'Size', 'Quick verify', 'Full verify (drill)'],
        entries
          .slice()
          .reverse()
          .map(
            (e) =>
              html`<tr>
                <td><code>${e.id}</code></td>
                <td>${e.manifest?.totals.rows ?? e.problem ?? ''}</td>
                <td>${e.manifest?.totals.sizeBytes ?? ''}</td>
                <td>
                  ${e.quickVerification ? html`${statusBadge(e.quickVerification.ok ? 'ok' : 'failed')} ${time(e.quickVerification.verifiedAt)}` : 'not yet'}
                </td>
                <td>
                  ${e.verification ? html`${statusBadge(e.verification.ok ? 'ok' : 'failed')} ${time(e.verification.verifiedAt)}` : 'not yet'}
                </td>
              </tr>`,
          ),
        'no backups yet',
      )}`;
    } catch (error) {
      listing = notice(`cannot read the backup target: ${(error as Error).message}`, 'error');
    }
    const body = html` ${notice(q.done)}
      <p>Target: <code>${targetUrl}</code></p>
      <form method="post" action="${base}/backups">
        ${csrfField(user)}<button type="submit">Back up now</button>
      </form>
      ${listing}`;
    return sendPage(reply, page(frame(request, 'backups'), 'Backups', body));
  };
}

function postBackups(ctx: ConsoleContext): RouteHandlerMethod {
  const { base } = ctx;
  return async (request, reply) => {
    const [{ createBackup }, { backupEncryption }] = await Promise.all([
      import('../../ops/backup/create-backup.js'),
      import('../../ops/backup/encryption.js'),
    ]);
    const result = await createBackup({
      config: ctx.config,
      target: ctx.openBackupTarget(),
      objects: ctx.objects,
      encryption: backupEncryption(ctx.config),
      reason: 'console',
      actor: actorOf(request),
    });
    return redirectBack(
      reply,
      `${base}/backups`,
      `backup ${result.manifest.id} written: ${result.manifest.totals.rows} rows`,
    );
  };
}

/** The console's pages of the backups at the target, and a backup taken now (operators only). */
export const backupPages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  const admin = { config: { consoleAdmin: true } };
  app.get('/backups', admin, showBackups(ctx));
  app.post('/backups', admin, postBackups(ctx));
};
