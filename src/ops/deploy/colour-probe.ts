import type { Colour } from './deploy-settings.js';

/** What one colour's `/readyz` said. */
export interface ColourState {
  readonly colour: Colour;
  readonly url: string;
  readonly reachable: boolean;
  readonly ready: boolean;
  readonly version: string | undefined;
  /** The database's migration, as this colour sees it. */
  readonly schema: number | undefined;
  /** The newest migration this colour's release knows. */
  readonly releaseSchema: number | undefined;
  readonly inFlight: number | undefined;
  /** Requests it received since it started, probes excluded (undefined from releases before it). */
  readonly requests: number | undefined;
  /** Why it is not ready (`schema_newer`, `shutting_down`, …); undefined when ready. */
  readonly code: string | undefined;
  readonly message: string | undefined;
}

interface ReadyBody {
  status?: string;
  version?: string;
  schema?: number;
  releaseSchema?: number;
  inFlight?: number;
  requests?: number;
  error?: { code?: string; message?: string };
}

/** Asks a colour's `/readyz`; an unreachable colour is reported, not thrown. */
export async function probeColour(colour: Colour, url: string, timeoutMs = 5_000): Promise<ColourState> {
  try {
    const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await response.json().catch(() => ({}))) as ReadyBody;
    return {
      colour,
      url,
      reachable: true,
      ready: response.status === 200 && body.status === 'ready',
      version: body.version,
      schema: body.schema,
      releaseSchema: body.releaseSchema,
      inFlight: body.inFlight,
      requests: body.requests,
      code: response.status === 200 ? undefined : (body.error?.code ?? `http_${response.status}`),
      message: response.status === 200 ? undefined : (body.error?.message ?? `HTTP ${response.status}`),
    };
  } catch (error) {
    return {
      colour,
      url,
      reachable: false,
      ready: false,
      version: undefined,
      schema: undefined,
      releaseSchema: undefined,
      inFlight: undefined,
      requests: undefined,
      code: 'server_unreachable',
      message: `${url} did not answer: ${(error as Error).message}`,
    };
  }
}
