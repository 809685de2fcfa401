import formbody from '@fastify/formbody';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Config } from '../config/resolve-config.js';
import { AthanorError, errorBody } from '../domain/errors.js';
import { appVersion } from '../version.js';
import { Authenticator } from '../service/authenticator.js';
import type { Store } from '../store/open-store.js';
import { handleError } from './errors.js';
import { humanLogStream, RequestLogController } from './log-format.js';
import type { ObjectStore } from '../objects/object-store.js';
import { openObjectStore } from '../objects/open-object-store.js';
import { MaintenanceWatch } from '../ops/maintenance.js';
import { chooseBackupTarget } from '../ops/backup/backup-env.js';
import type { BackupTarget } from '../ops/backup/target.js';
import { backupTargetOpener } from '../ops/backup/target.js';
import { backupGaugeRefresher } from '../ops/schedule/backup-gauges.js';
import { probeRoutes } from './probe-routes.js';
import { useJsonBodyParser } from './json-body.js';
import { ErrorBody, errorResponses, maxKeyLength } from './schemas.js';
import { ajvCustomOptions, buildValidator } from './validation.js';
import { computeRoutes } from './compute-routes.js';
import { computeExchangeRoute } from './compute-exchange-route.js';
import { computeLogRoutes, userLogRoutes } from './log-routes.js';
import { ServerLifecycle } from './lifecycle.js';
import { refuseWritesInMaintenance } from './maintenance-gate.js';
import { sweeperPlugin } from './sweeper-plugin.js';
import { eventsPlugin } from './events-plugin.js';
import { eventRoutes } from './event-routes.js';
import { loadStrategies } from '../service/strategies/strategies.js';
import { userRoutes } from './user-routes.js';
import { registerConsole } from './console/console-plugin.js';

/** Which API(s) one server process serves. */
export type ApiSelection = 'user' | 'compute' | 'all';

export interface AppOptions {
  readonly store: Store;
  readonly config: Config;
  readonly api?: ApiSelection;
  /** pino logger options, or false for none (tests). */
  readonly logger?: boolean | { level: string };
  /** The object store for results; default: opened from `config.objectsUrl`. */
  readonly objects?: ObjectStore;
  /** Drain state and in-flight count shared with the composition root; default: a fresh one. */
  readonly lifecycle?: ServerLifecycle;
  /** Opens the backup target once for the gauges and the console; default: from `config.backupTarget`. */
  readonly openBackupTarget?: () => BackupTarget;
}

/** Builds the HTTP application: both APIs (or one), OpenAPI, health. Does not listen. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { store, config } = options;
  const api = options.api ?? 'all';
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: typeof options.logger === 'object' ? options.logger.level : config.logLevel,
            redact: ['req.headers.authorization', 'req.body.password'],
            ...(process.stdout.isTTY ? { stream: humanLogStream() } : {}),
          },
    logController: new RequestLogController(),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    ajv: { customOptions: ajvCustomOptions },
    schemaController: { compilersFactory: { buildValidator: buildValidator() } },
    // The router's limit is the schemas' key limit, so a longer parameter gets the same 400.
    routerOptions: { maxParamLength: maxKeyLength },
    // Bad percent-encoding and over-long parameters answer in the registry's error shape too.
    frameworkErrors: (error, request, reply) => handleError(error, request, reply),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const lifecycle = options.lifecycle ?? new ServerLifecycle();
  lifecycle.track(app);
  app.setErrorHandler((error, request, reply) => handleError(error, request, reply));
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send(
        errorBody(new AthanorError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
      );
  });

  useJsonBodyParser(app, config.maxJsonDepth);
  await app.register(formbody);
  await app.register(rateLimit, { global: false });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Athanor',
        version: appVersion,
        description: 'User API under /v1, compute API under /compute/v1',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Shared schemas keep their $id as their name under components.schemas (ErrorBody, not def-0).
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addSchema(ErrorBody);
  // Every documented route answers its errors as ErrorBody; routes add only their success shapes.
  app.addHook('onRoute', (route) => {
    if (!route.schema || route.schema.hide) return;
    route.schema = { ...route.schema, response: { ...errorResponses, ...(route.schema.response ?? {}) } };
  });

  const authenticator = await Authenticator.create(store, {
    jwtSecret: config.jwtSecret,
    jwtPreviousSecret: config.jwtPreviousSecret,
    tokenTtlSeconds: config.tokenTtlSeconds,
    tokenRateLimit: config.tokenRateLimit,
  });
  const objects = options.objects ?? openObjectStore(config.objectsUrl);
  const timings = { leaseTtlMs: config.leaseTtlMs, registrationTtlMs: config.registrationTtlMs };
  const routeOptions = {
    store,
    authenticator,
    tokenRateLimit: config.tokenRateLimit,
    presignDownloadsSeconds: config.presignDownloadsSeconds,
    inlineResultMaxBytes: config.inlineResultMaxBytes,
    objects,
    timings,
    networkLimits: {
      maxTransformations: config.maxNetworkTransformations,
      maxInputsBytes: config.maxInputsBytes,
    },
    closing: lifecycle.closing,
  };

  const maintenance = new MaintenanceWatch(store);
  refuseWritesInMaintenance(app, maintenance);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  const openBackupTarget = options.openBackupTarget ?? backupTargetOpener(chooseBackupTarget(config));
  await app.register(probeRoutes, {
    store,
    maintenance,
    lifecycle,
    metricsToken: config.metricsToken,
    refreshBackupGauges: backupGaugeRefresher(openBackupTarget),
  });

  await app.register(sweeperPlugin, { store, intervalMs: config.sweepIntervalMs });
  const strategies = await loadStrategies(config.strategyModules);
  const inMaintenance = async () => (await maintenance.current()).on;
  await app.register(eventsPlugin, { store, config, strategies, inMaintenance });

  if (api === 'user' || api === 'all') {
    await app.register(userRoutes, { ...routeOptions, prefix: '/v1' });
    await app.register(userLogRoutes, { ...routeOptions, prefix: '/v1' });
    await app.register(eventRoutes, { ...routeOptions, config, strategies, prefix: '/v1' });
  }
  if (api === 'compute' || api === 'all') {
    await app.register(computeRoutes, { ...routeOptions, prefix: '/compute/v1' });
    await app.register(computeExchangeRoute, { ...routeOptions, prefix: '/compute/v1' });
    await app.register(computeLogRoutes, { ...routeOptions, prefix: '/compute/v1' });
  }
  if (api === 'user' || api === 'all')
    await registerConsole(app, { ...routeOptions, config, openBackupTarget });
  return app;
}
