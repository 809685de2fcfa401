import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/resolve-config.js';
import { AthanorError } from '../domain/errors.js';
import { eventTypes } from '../domain/event-types.js';
import type { Authenticator } from '../service/authenticator.js';
import { ensureTasks } from '../service/ensure-tasks.js';
import type { EventQuery } from '../service/events/event-log.js';
import { maxEventsPerPage, parseEventTypes, readEvents, waitForEvents } from '../service/events/event-log.js';
import * as webhooks from '../service/events/webhooks.js';
import type { StrategyRegistry } from '../service/strategies/strategies.js';
import * as strategies from '../service/strategies/strategies.js';
import type { Store } from '../store/open-store.js';
import { principalOf, requireBearer } from './auth-hook.js';
import { webhookSettings } from './events-plugin.js';
import * as S from './schemas.js';

export interface EventRouteOptions {
  readonly store: Store;
  readonly authenticator: Authenticator;
  readonly config: Config;
  readonly strategies: StrategyRegistry;
  /** Aborted when the server begins to close: open event streams end. */
  readonly closing?: AbortSignal;
}

const tags = ['events'];
const ok = { 200: Type.Unknown() };
const EventsQuery = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: 0, description: 'the id of the last event already seen' })),
  scope: Type.Optional(S.ScopeText),
  type: Type.Optional(
    Type.String({ maxLength: 2000, description: `comma separated: ${eventTypes.join(', ')}` }),
  ),
  network: Type.Optional(S.Key),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxEventsPerPage })),
});
const WebhookParams = Type.Object({ id: S.Key });
const NetworkParams = Type.Object({ key: S.Key });

/** Comment lines keep an idle stream open through proxies; the caller's token is re-checked then too. */
const keepAliveMs = 15_000;

/** The event log (JSON pages or Server-Sent Events), webhooks, strategies, and ensured tasks. */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRouteOptions> = async (app, options) => {
  const { store, config, authenticator } = options;
  const registry = options.strategies;
  const limits = webhookSettings(config);
  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort();
  });

  await app.register(async (plain) => {
    const api = plain.withTypeProvider<TypeBoxTypeProvider>();
    requireBearer(plain, authenticator, 'user');

    api.get(
      '/events',
      {
        schema: {
          summary:
            'Events in your scopes after a position, oldest first; as Server-Sent Events (resumable with Last-Event-ID) when the request accepts text/event-stream',
          tags,
          querystring: EventsQuery,
          response: ok,
        },
      },
      async (request, reply) => {
        const lastEventId = request.headers['last-event-id'];
        let after = request.query.after;
        if (typeof lastEventId === 'string' && lastEventId.trim() !== '') {
          after = Number(lastEventId);
          if (!Number.isSafeInteger(after) || after < 0)
            throw new AthanorError(
              'validation_failed',
              'headers/last-event-id must be the id of an event (a whole number)',
            );
        }
        const query: EventQuery = {
          after,
          scope: request.query.scope,
          types: request.query.type === undefined ? undefined : [request.query.type],
          network: request.query.network,
          limit: request.query.limit,
        };
        parseEventTypes(query.types, 'querystring/type');
        const principal = principalOf(request);
        if (!(request.headers.accept ?? '').includes('text/event-stream')) {
          const events = await readEvents(store, principal, query);
          return { events, next: events.at(-1)?.id ?? after ?? 0 };
        }
        // Fails before the stream opens (a bad scope is a 400, not a broken stream).
        await readEvents(store, principal, { ...query, limit: 1 });
        return streamEvents(request, reply, query);
      },
    );

    const streamEvents = async (request: FastifyRequest, reply: FastifyReply, query: EventQuery) => {
      const stop = new AbortController();
      streams.add(stop);
      const onClosing = () => stop.abort();
      options.closing?.addEventListener('abort', onClosing);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.on('close', () => stop.abort());
      const write = async (text: string) => {
        if (!raw.write(text))
          await new Promise<void>((resolve) => raw.once('drain', resolve).once('close', resolve));
      };
      const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
      let principal = principalOf(request);
      let after = query.after ?? 0;
      let lastBeat = Date.now();
      try {
        await write('retry: 2000\n\n');
        while (!stop.signal.aborted) {
          const events = await readEvents(store, principal, { ...query, after });
          for (const event of events) {
            await write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
            after = event.id;
          }
          if (events.length === maxEventsPerPage) continue;
          if (Date.now() - lastBeat >= keepAliveMs) {
            // A revoked or disabled identity loses its stream as it loses its tokens.
            principal = await authenticator.authenticate(token, 'user');
            await write(': keep-alive\n\n');
            lastBeat = Date.now();
          }
          await waitForEvents(store, 1000, stop.signal);
        }
      } catch (error) {
        request.log.info({ err: error }, 'event stream ended');
      } finally {
        streams.delete(stop);
        options.closing?.removeEventListener('abort', onClosing);
        raw.end();
      }
    };

    api.post(
      '/webhooks',
      {
        schema: {
          summary: 'Add a webhook endpoint; the answer holds its signing secret, shown this once',
          tags,
          body: S.Body({
            url: Type.String({ minLength: 1, maxLength: 2000 }),
            scope: S.ScopeText,
            events: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
          }),
          response: ok,
        },
      },
      async (request) => webhooks.addWebhook(store, principalOf(request), request.body, limits),
    );
    api.get(
      '/webhooks',
      { schema: { summary: 'Webhook endpoints in your scopes', tags, response: ok } },
      async (request) => webhooks.listWebhooks(store, principalOf(request)),
    );
    api.get(
      '/webhooks/:id',
      {
        schema: {
          summary: 'A webhook endpoint with its newest deliveries',
          tags,
          params: WebhookParams,
          querystring: Type.Object({
            deliveries: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          }),
          response: ok,
        },
      },
      async (request) =>
        webhooks.getWebhook(store, principalOf(request), request.params.id, request.query.deliveries),
    );
    api.delete(
      '/webhooks/:id',
      { schema: { summary: 'Remove a webhook endpoint', tags, params: WebhookParams, response: ok } },
      async (request) => webhooks.removeWebhook(store, principalOf(request), request.params.id),
    );
    api.post(
      '/webhooks/:id/test',
      {
        schema: {
          summary: 'Send a signed webhook.test message now',
          tags,
          params: WebhookParams,
          response: ok,
        },
      },
      async (request) => webhooks.testWebhook(store, principalOf(request), request.params.id, limits),
    );
    api.post(
      '/webhooks/:id/enable',
      { schema: { summary: 'Turn a disabled webhook back on', tags, params: WebhookParams, response: ok } },
      async (request) => webhooks.enableWebhook(store, principalOf(request), request.params.id),
    );

    api.get(
      '/strategies',
      { schema: { summary: 'The strategies this server runs', tags, response: ok } },
      async () =>
        [...registry.values()].map((s) => ({
          name: s.name,
          description: s.description,
          parameters: s.parameters,
        })),
    );
    api.put(
      '/networks/:key/strategy',
      {
        schema: {
          summary: "Name the network's strategy and its parameters; the server runs it when results change",
          tags,
          params: NetworkParams,
          body: S.Body({
            name: Type.String({ minLength: 1, maxLength: 100 }),
            params: Type.Optional(Type.Unknown()),
          }),
          response: ok,
        },
      },
      async (request) =>
        strategies.setStrategy(store, principalOf(request), registry, request.params.key, request.body),
    );
    api.get(
      '/networks/:key/strategy',
      {
        schema: {
          summary: "The network's strategy and its state",
          tags,
          params: NetworkParams,
          response: ok,
        },
      },
      async (request) => strategies.getStrategy(store, principalOf(request), request.params.key),
    );
    api.delete(
      '/networks/:key/strategy',
      { schema: { summary: "Remove the network's strategy", tags, params: NetworkParams, response: ok } },
      async (request) => strategies.removeStrategy(store, principalOf(request), request.params.key),
    );
    api.get(
      '/networks/:key/strategy/preview',
      {
        schema: {
          summary: 'What the strategy would do now, done nothing',
          tags,
          params: NetworkParams,
          response: ok,
        },
      },
      async (request) =>
        strategies.previewStrategy(
          store,
          principalOf(request),
          registry,
          request.params.key,
          config.strategyDeadlineMs,
        ),
    );

    api.post(
      '/transformations/:key/tasks/ensure',
      {
        schema: {
          summary: 'Make sure N tasks of the transformation exist (complete, waiting or running); idempotent',
          tags,
          params: NetworkParams,
          body: S.Body({
            count: Type.Integer({ minimum: 0, maximum: 1000 }),
            network: Type.Optional(S.Key),
            priority: Type.Optional(S.Priority),
            weight: Type.Optional(S.Weight),
          }),
          response: ok,
        },
      },
      async (request) => ensureTasks(store, principalOf(request), request.params.key, request.body),
    );
  });
};
