import { Type } from '@fastify/type-provider-typebox';
import type { ObjectStore } from '../objects/object-store.js';
import type { Authenticator } from '../service/authenticator.js';
import type { ComputeTimings } from '../service/compute-services.js';
import type * as networks from '../service/networks.js';
import type { Store } from '../store/open-store.js';
import * as S from './schemas.js';

/** What every API route plugin is registered with (`buildApp` builds it once). */
export interface RouteOptions {
  readonly store: Store;
  readonly authenticator: Authenticator;
  readonly tokenRateLimit: number;
  /** Where result bytes stored as blobs are (set when an object store is configured). */
  readonly objects?: ObjectStore;
  /** Result downloads redirect to presigned URLs this long-lived when the store signs them; 0: stream. */
  readonly presignDownloadsSeconds?: number;
  /** Per-network submission limits; default `defaultNetworkLimits`. */
  readonly networkLimits?: networks.NetworkLimits;
}

/** What the compute API's plugins are registered with besides the common options. */
export interface ComputeRouteOptions extends RouteOptions {
  readonly objects: ObjectStore;
  readonly timings: ComputeTimings;
  /** Successful results read whole and at most this long are stored in their row (the setting). */
  readonly inlineResultMaxBytes: number;
  /** Aborted when the server stops listening: waiting long-poll claims return at once. */
  readonly closing?: AbortSignal;
}

/** What a claim may ask for besides its count: the claims route and the exchange share it. */
export const claimOptions = {
  scopes: Type.Optional(Type.Array(S.ScopeText, { maxItems: 100 })),
  protocols: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 })),
  excludeScopes: Type.Optional(
    Type.Array(S.ScopeText, { maxItems: 100, description: 'never claim tasks in these scopes' }),
  ),
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
};

export { Claim } from '../domain/api-shapes.js';
