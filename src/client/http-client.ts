import type { Readable } from 'node:stream';
import { AthanorError, errorKinds } from '../domain/errors.js';
import type { ErrorCode } from '../domain/errors.js';

export interface ClientOptions {
  /** Base URL of the server, e.g. `https://athanor.example.org`. */
  readonly url: string;
  readonly identifier: string;
  readonly key: string;
  /** Request timeout in milliseconds; default 60000. */
  readonly timeoutMs?: number;
}

export interface RequestOptions {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly query?: object;
  readonly body?: unknown;
  /** A raw body streamed as application/octet-stream. */
  readonly stream?: Readable | Buffer;
  readonly headers?: Record<string, string>;
}

/**
 * The HTTP plumbing shared by the user and compute clients: bearer tokens fetched on demand
 * and refreshed once on a 401, errors turned back into AthanorError with the server's code.
 */
export class HttpClient {
  #token: string | undefined;
  readonly #base: string;

  constructor(
    private readonly options: ClientOptions,
    /** `/v1` or `/compute/v1`. */
    private readonly prefix: string,
  ) {
    this.#base = options.url.replace(/\/+$/, '');
  }

  get baseUrl(): string {
    return this.#base;
  }

  async #fetchToken(): Promise<string> {
    const response = await this.#send(`${this.prefix}/token`, {
      method: 'POST',
      body: { username: this.options.identifier, password: this.options.key },
    });
    const body = (await response.json()) as { access_token: string };
    this.#token = body.access_token;
    return this.#token;
  }

  async #send(path: string, request: RequestOptions, token?: string): Promise<Response> {
    const url = new URL(`${this.#base}${path}`);
    for (const [name, value] of Object.entries(request.query ?? {}) as [string, unknown][]) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { ...request.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | Readable | Buffer | undefined;
    if (request.stream !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      body = request.stream;
    } else if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.body);
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method: request.method ?? 'GET',
        headers,
        body: body as RequestInit['body'],
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
        ...(request.stream !== undefined ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (cause) {
      throw new AthanorError(
        'server_unreachable',
        `cannot reach the Athanor server at ${this.#base}: ${(cause as Error).message}. Check ATHANOR_URL and that the server runs`,
        { cause },
      );
    }
    if (!response.ok) throw await responseError(response);
    return response;
  }

  /** Sends an authenticated request; on a 401 fetches a new token once and retries. */
  async request(path: string, request: RequestOptions = {}): Promise<Response> {
    const token = this.#token ?? (await this.#fetchToken());
    try {
      return await this.#send(`${this.prefix}${path}`, request, token);
    } catch (error) {
      // A streamed body cannot be sent twice; a JSON body can.
      if (error instanceof AthanorError && error.code === 'unauthenticated' && request.stream === undefined) {
        return this.#send(`${this.prefix}${path}`, request, await this.#fetchToken());
      }
      throw error;
    }
  }

  async json<T>(path: string, request: RequestOptions = {}): Promise<T> {
    const response = await this.request(path, request);
    return (await response.json()) as T;
  }
}

async function responseError(response: Response): Promise<AthanorError> {
  let code: string | undefined;
  let message = `HTTP ${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not a JSON error body: keep the status line
  }
  const known = code !== undefined && code in errorKinds ? (code as ErrorCode) : statusCode(response.status);
  return new AthanorError(known, message, { details: { status: response.status } });
}

function statusCode(status: number): ErrorCode {
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 413) return 'body_too_large';
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'maintenance';
  if (status >= 400 && status < 500) return 'invalid_argument';
  return 'internal';
}
