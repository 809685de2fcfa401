import type { FastifyPluginAsync, RouteHandlerMethod } from 'fastify';
import { AthanorError } from '../../domain/errors.js';
import type { IdentityKind } from '../../domain/identifier.js';
import { identityKinds } from '../../domain/identifier.js';
import * as identities from '../../service/identities.js';
import * as identityRoles from '../../service/identity-roles.js';
import type { ConsoleContext } from './context.js';
import { actorOf, field, formOf, redirectBack, requireField, sendPage, userOf } from './context.js';
import { html } from './html.js';
import { csrfField, notice, page, statusBadge, table, time } from './layout.js';
import { frameOf, identityStatus, refOf, scopesOf } from './page-helpers.js';
import type { Query } from './page-helpers.js';

function showIdentities(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
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
  };
}

function postIdentities(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
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
  };
}

function showIdentity(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
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
  };
}

function postIdentityRotate(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  const frame = frameOf(base);
  return async (request, reply) => {
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
  };
}

function postIdentityScopes(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const ref = refOf(request);
    const form = formOf(request);
    const remove = Array.isArray(form.remove) ? form.remove : form.remove ? [form.remove] : [];
    const add = scopesOf(field(form, 'add'));
    if (add.length === 0 && remove.length === 0)
      throw new AthanorError('invalid_argument', 'give scopes to add or tick scopes to remove');
    if (add.length) await identities.addIdentityScopes(store, actorOf(request), ref, add);
    if (remove.length) await identities.removeIdentityScopes(store, actorOf(request), ref, remove);
    return redirectBack(reply, `${base}/identities/${ref.kind}/${ref.identifier}`, 'scopes updated');
  };
}

function postIdentityExpiry(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const ref = refOf(request);
    const expires = field(formOf(request), 'expires');
    await identities.setIdentityExpiry(store, actorOf(request), ref, expires);
    return redirectBack(
      reply,
      `${base}/identities/${ref.kind}/${ref.identifier}`,
      `expiry set to ${expires ?? 'never'}`,
    );
  };
}

function postIdentityRole(ctx: ConsoleContext): RouteHandlerMethod {
  const { store, base } = ctx;
  return async (request, reply) => {
    const ref = refOf(request);
    const grant = field(formOf(request), 'admin') === '1';
    if (grant) await identityRoles.grantRole(store, actorOf(request), ref, 'admin');
    else await identityRoles.revokeRole(store, actorOf(request), ref, 'admin');
    return redirectBack(
      reply,
      `${base}/identities/${ref.kind}/${ref.identifier}`,
      grant ? 'granted admin' : 'revoked admin',
    );
  };
}

/** The console's pages of the identities: list, add, one identity and its lifecycle (operators only). */
export const identityPages: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  const { store, base } = ctx;
  const admin = { config: { consoleAdmin: true } };
  app.get('/identities', admin, showIdentities(ctx));
  app.post('/identities', admin, postIdentities(ctx));
  app.get('/identities/:kind/:id', admin, showIdentity(ctx));
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
  app.post('/identities/:kind/:id/rotate', admin, postIdentityRotate(ctx));
  app.post('/identities/:kind/:id/scopes', admin, postIdentityScopes(ctx));
  app.post('/identities/:kind/:id/expiry', admin, postIdentityExpiry(ctx));
  app.post('/identities/:kind/:id/role', admin, postIdentityRole(ctx));
};
