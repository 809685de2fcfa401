import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AthanorError } from '../../domain/errors.js';
import type { IdentityKind } from '../../domain/identifier.js';
import { identityKinds, parseIdentifier } from '../../domain/identifier.js';
import { getMaintenance, setMaintenance } from '../../ops/maintenance.js';
import type { BackupFreshness } from '../../ops/schedule/backup-freshness.js';
import { backupFreshness } from '../../ops/schedule/backup-freshness.js';
import { listAudit } from '../../service/audit.js';
import * as identities from '../../service/identities.js';
import * as identityRoles from '../../service/identity-roles.js';
import type { ConsoleContext } from './context.js';
import { actorOf, field, formOf, redirectBack, requireField, sendPage, userOf } from './context.js';
import { html } from './html.js';
import { csrfField, notice, page, query, statusBadge, table, time } from './layout.js';

type Query = Readonly<Record<string, string | undefined>>;

async function backupEntries(ctx: ConsoleContext) {
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

function identityStatus(identity: identities.IdentityView): string {
  if (identity.disabled) return 'disabled';
  if (identity.expiresAt && new Date(identity.expiresAt) <= new Date()) return 'expired';
  return 'active';
}

function refOf(request: FastifyRequest): identities.IdentityRef {
  const { kind, id } = request.params as { kind: string; id: string };
  if (!(identityKinds as readonly string[]).includes(kind)) {
    throw new AthanorError(
      'invalid_argument',
      `'${kind}' is not an identity type: use ${identityKinds.join(' or ')}`,
    );
  }
  return { kind: kind as IdentityKind, identifier: parseIdentifier(id) };
}

function scopesOf(text: string | undefined): string[] {
  return (text ?? '').split(/[\s,]+/).filter((s) => s !== '');
}

export function operatorPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { store, base } = ctx;
  const frame = (request: FastifyRequest, section: string) => ({ base, user: userOf(request), section });
  const admin = { config: { consoleAdmin: true } };

  app.get('/identities', admin, async (request, reply) => {
    const user = userOf(request);
    const q = request.query as Query;
    const [list, roles] = await Promise.all([
      identities.listIdentities(store, undefined),
      identityRoles.listRolesByIdentity(store),
    ]);
    const body = html` ${notice(q.done)}
      ${table(
        ['Identity', 'Status', 'Expires', 'Scopes', 'Roles', 'Actions'],
        list.map((i) => {
          const path = `${base}/identities/${i.kind}/${i.identifier}`;
          const held = roles.get(`${i.kind}:${i.identifier}`) ?? [];
          return html`<tr>
            <td>${i.kind}:<strong>${i.identifier}</strong></td>
            <td>${statusBadge(identityStatus(i))}</td>
            <td>${i.expiresAt ? time(i.expiresAt) : 'never'}</td>
            <td>${i.scopes.map((s) => html`<code>${s}</code> `)}</td>
            <td>${held.join(' ')}</td>
            <td>
              <div class="row-actions">
                <form method="post" action="${path}/${i.disabled ? 'enable' : 'disable'}" class="inline-form">
                  ${csrfField(user)}<button type="submit" class="${i.disabled ? '' : 'secondary'}">
                    ${i.disabled ? 'Enable' : 'Disable'}
                  </button>
                </form>
                <form
                  method="post"
                  action="${path}/rotate"
                  class="inline-form"
                  data-confirm="Rotate the key of ${i.identifier}? Its sessions and tokens end."
                >
                  ${csrfField(user)}<button type="submit" class="secondary outline">Rotate key</button>
                </form>
                <a href="${path}">Edit</a>
              </div>
            </td>
          </tr>`;
        }),
        'no identities',
      )}
      <h2>Add an identity</h2>
      <form method="post" action="${base}/identities">
        ${csrfField(user)}
        <div class="grid">
          <label
            >Type
            <select name="kind">
              ${identityKinds.map((k) => html`<option>${k}</option>`)}
            </select></label
          >
          <label
            >Identifier <input name="identifier" required pattern="[A-Za-z][A-Za-z0-9_.@\\-]*" maxlength="64"
          /></label>
        </div>
        <label>Scopes (space separated) <input name="scopes" placeholder="org-campaign-project" /></label>
        <label
          >Expires (ISO 8601, optional) <input name="expires" placeholder="2027-01-31T00:00:00Z"
        /></label>
        <label><input type="checkbox" name="admin" value="1" /> admin role (operator pages)</label>
        <button type="submit">Add; the key is shown once</button>
      </form>`;
    return sendPage(reply, page(frame(request, 'identities'), 'Identities', body));
  });

  app.post('/identities', admin, async (request, reply) => {
    const form = formOf(request);
    const kind = requireField(form, 'kind', 'the type');
    if (!(identityKinds as readonly string[]).includes(kind)) {
      throw new AthanorError(
        'invalid_argument',
        `'${kind}' is not an identity type: use ${identityKinds.join(' or ')}`,
      );
    }
    const ref = {
      kind: kind as IdentityKind,
      identifier: requireField(form, 'identifier', 'the identifier'),
    };
    const created = await identities.addIdentity(store, actorOf(request), {
      ...ref,
      scopes: scopesOf(field(form, 'scopes')),
      expiresAt: field(form, 'expires'),
    });
    if (field(form, 'admin') === '1') await identityRoles.grantRole(store, actorOf(request), ref, 'admin');
    void reply.header('cache-control', 'no-store');
    const body = html` ${notice(`added ${ref.kind} identity '${ref.identifier}'`)}
      <article>
        <h2>Its key, shown this once</h2>
        <p>Copy it now and hand it over safely; Athanor keeps only a hash of it and cannot show it again.</p>
        <p class="key-once" id="new-key">${created.generatedKey ?? ''}</p>
      </article>
      <p><a href="${base}/identities">Back to identities</a></p>`;
    return sendPage(reply, page(frame(request, 'identities'), `New identity ${ref.identifier}`, body));
  });

  app.get('/identities/:kind/:id', admin, async (request, reply) => {
    const user = userOf(request);
    const ref = refOf(request);
    const q = request.query as Query;
    const identity = await identities.showIdentity(store, ref);
    const held = await identityRoles.listIdentityRoles(store, ref);
    const path = `${base}/identities/${ref.kind}/${ref.identifier}`;
    const body = html` ${notice(q.done)}
      <p>
        ${statusBadge(identityStatus(identity))} created ${time(identity.createdAt)}, updated
        ${time(identity.updatedAt)}; expires ${identity.expiresAt ?? 'never'}
      </p>
      <h2>Scopes</h2>
      <form method="post" action="${path}/scopes">
        ${csrfField(user)}
        ${table(
          ['', 'Scope'],
          identity.scopes.map(
            (s) =>
              html`<tr>
                <td><input type="checkbox" name="remove" value="${s}" aria-label="remove ${s}" /></td>
                <td><code>${s}</code></td>
              </tr>`,
          ),
          'no scopes: this identity sees nothing',
        )}
        <label>Add scopes (space separated) <input name="add" placeholder="org-campaign-project" /></label>
        <button type="submit">Update scopes</button>
      </form>
      <div class="grid">
        <form method="post" action="${path}/expiry">
          ${csrfField(user)}
          <label
            >Expires (ISO 8601; empty: never) <input name="expires" value="${identity.expiresAt ?? ''}"
          /></label>
          <button type="submit">Set expiry</button>
        </form>
        ${
          ref.kind === 'user'
            ? html`<form method="post" action="${path}/role">
                ${csrfField(user)}
                <p>Roles: ${held.length ? held.join(' ') : 'none'}</p>
                <input type="hidden" name="admin" value="${held.includes('admin') ? '0' : '1'}" />
                <button type="submit" class="secondary">
                  ${held.includes('admin') ? 'Revoke admin' : 'Grant admin'}
                </button>
              </form>`
            : ''
        }
      </div>`;
    return sendPage(
      reply,
      page(frame(request, 'identities'), `Identity ${ref.kind}:${ref.identifier}`, body),
    );
  });

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(`/identities/:kind/:id/${verb}`, admin, async (request, reply) => {
      const ref = refOf(request);
      await identities.setIdentityDisabled(store, actorOf(request), ref, disabled);
      return redirectBack(reply, `${base}/identities`, `${verb}d ${ref.kind} identity '${ref.identifier}'`);
    });
  }

  app.post('/identities/:kind/:id/rotate', admin, async (request, reply) => {
    const ref = refOf(request);
    const result = await identities.setIdentityKey(store, actorOf(request), ref, undefined);
    void reply.header('cache-control', 'no-store');
    const body = html` ${notice(`rotated the key of ${ref.kind} identity '${ref.identifier}': its old key, tokens and sessions no longer work`)}
      <article>
        <h2>The new key, shown this once</h2>
        <p class="key-once" id="new-key">${result.generatedKey ?? ''}</p>
      </article>
      <p><a href="${base}/identities">Back to identities</a></p>`;
    return sendPage(reply, page(frame(request, 'identities'), `New key for ${ref.identifier}`, body));
  });

  app.post('/identities/:kind/:id/scopes', admin, async (request, reply) => {
    const ref = refOf(request);
    const form = formOf(request);
    const remove = Array.isArray(form.remove) ? form.remove : form.remove ? [form.remove] : [];
    const add = scopesOf(field(form, 'add'));
    if (add.length === 0 && remove.length === 0)
      throw new AthanorError('invalid_argument', 'give scopes to add or tick scopes to remove');
    if (add.length) await identities.addIdentityScopes(store, actorOf(request), ref, add);
    if (remove.length) await identities.removeIdentityScopes(store, actorOf(request), ref, remove);
    return redirectBack(reply, `${base}/identities/${ref.kind}/${ref.identifier}`, 'scopes updated');
  });

  app.post('/identities/:kind/:id/expiry', admin, async (request, reply) => {
    const ref = refOf(request);
    const expires = field(formOf(request), 'expires');
    await identities.setIdentityExpiry(store, actorOf(request), ref, expires);
    return redirectBack(
      reply,
      `${base}/identities/${ref.kind}/${ref.identifier}`,
      `expiry set to ${expires ?? 'never'}`,
    );
  });

  app.post('/identities/:kind/:id/role', admin, async (request, reply) => {
    const ref = refOf(request);
    const grant = field(formOf(request), 'admin') === '1';
    if (grant) await identityRoles.grantRole(store, actorOf(request), ref, 'admin');
    else await identityRoles.revokeRole(store, actorOf(request), ref, 'admin');
    return redirectBack(
      reply,
      `${base}/identities/${ref.kind}/${ref.identifier}`,
      grant ? 'granted admin' : 'revoked admin',
    );
  });

  app.get('/audit', admin, async (request, reply) => {
    const q = request.query as Query;
    const since = q.since ? isoOrThrow(q.since, 'since') : undefined;
    const until = q.until ? isoOrThrow(q.until, 'until') : undefined;
    const rows = await listAudit(store, {
      actor: q.actor || undefined,
      action: q.action || undefined,
      since,
      until,
      limit: 500,
    });
    const body = html` <form method="get" class="filters" role="search">
        <label>Actor <input name="actor" value="${q.actor ?? ''}" placeholder="user:alice" /></label>
        <label
          >Action (prefix) <input name="action" value="${q.action ?? ''}" placeholder="identity."
        /></label>
        <label>Since <input name="since" value="${q.since ?? ''}" placeholder="2026-01-31T00:00Z" /></label>
        <label>Until <input name="until" value="${q.until ?? ''}" /></label>
        <button type="submit">Search</button>
      </form>
      <p>
        <a href="${base}/audit${query({ actor: q.actor, action: q.action, since: q.since, until: q.until })}"
          >Link to this search</a
        >; newest first, at most 500.
      </p>
      ${table(
        ['When', 'Actor', 'Action', 'Target', 'Outcome', 'Details'],
        rows
          .slice()
          .reverse()
          .map(
            (r) =>
              html`<tr>
                <td>${time(r.at)}</td>
                <td><a href="${base}/audit${query({ actor: r.actor })}">${r.actor}</a></td>
                <td>${r.action}</td>
                <td>${r.target ?? ''}</td>
                <td>${statusBadge(r.outcome)}</td>
                <td><code>${r.details ?? ''}</code></td>
              </tr>`,
          ),
        'nothing matches',
      )}`;
    return sendPage(reply, page(frame(request, 'audit'), 'Audit log', body));
  });

  app.get('/backups', admin, async (request, reply) => {
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
  });

  app.post('/backups', admin, async (request, reply) => {
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
  });

  app.get('/maintenance', admin, async (request, reply) => {
    const user = userOf(request);
    const q = request.query as Query;
    const state = await getMaintenance(store);
    const body = html` ${notice(q.done)}
      <p>
        Maintenance is
        ${statusBadge(state.on ? 'on' : 'off')}${state.on ? html`: ${state.reason}, since ${time(state.since)} by ${state.by}` : ''}.
      </p>
      <p>While it is on, the APIs answer writes and claims with 503 and reads keep working.</p>
      ${
        state.on
          ? html`<form method="post" action="${base}/maintenance">
              ${csrfField(user)}<input type="hidden" name="on" value="0" /><button type="submit">
                Turn maintenance off
              </button>
            </form>`
          : html`<form method="post" action="${base}/maintenance">
              ${csrfField(user)}<input type="hidden" name="on" value="1" />
              <label
                >Reason <input name="reason" maxlength="500" required placeholder="database upgrade"
              /></label>
              <button type="submit">Turn maintenance on</button>
            </form>`
      }`;
    return sendPage(reply, page(frame(request, 'maintenance'), 'Maintenance', body));
  });

  app.post(
    '/maintenance',
    { config: { consoleAdmin: true, writesInMaintenance: true } },
    async (request, reply) => {
      const form = formOf(request);
      const on = field(form, 'on') === '1';
      await setMaintenance(
        store,
        actorOf(request),
        on,
        on ? requireField(form, 'reason', 'a reason') : undefined,
      );
      return redirectBack(reply, `${base}/maintenance`, on ? 'maintenance is on' : 'maintenance is off');
    },
  );
}

function isoOrThrow(text: string, label: string): string {
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) {
    throw new AthanorError(
      'invalid_argument',
      `${label} '${text}' is not a date; use ISO 8601, e.g. 2026-01-31T00:00Z`,
    );
  }
  return at.toISOString();
}
