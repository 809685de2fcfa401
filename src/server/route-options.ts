import { Type } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import type { ObjectStore } from '../objects/object-store.js';
import type { Authenticator } from '../service/authenticator.js';
import type { ComputeTimings } from '../service/compute.js';
import type * as networks from '../service/networks.js';
import type { Store } from '../store/open-store.js';
import * as S from './schemas.js';

/** What every API route plugin is registered with (`buildApp` builds it once). */
export interface RouteOptions {
  readonly store: Store;
  readonly authenticator: Authenticator;
  readonly tokenRateLimit: number;
  /** Streams a result's bytes to the reply (set when an object store is configured). */
  readonly openResult?: (sha256: string) => Promise<Readable>;
  /** A presigned URL for a result's bytes, when downloads are to bypass the API; else undefined. */
  readonly resultDownloadUrl?: (sha256: string) => Promise<string | undefined>;
  /** Per-network submission limits; default `defaultNetworkLimits`. */
  readonly networkLimits?: networks.NetworkLimits;
}

/** What the compute API's plugins are registered with besides the common options. */
export interface ComputeRouteOptions extends RouteOptions {
  readonly objects: ObjectStore;
  readonly timings: ComputeTimings;
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
