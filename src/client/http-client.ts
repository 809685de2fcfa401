import http from 'node:http';
import type HttpsModule from 'node:https';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AthanorError, errorKinds } from '../domain/errors.js';
import type { ErrorCode } from '../domain/errors.js';

export interface ClientOptions {
  /** Base URL of the server, e.g. `https://athanor.example.org`. */
  readonly url: string;
  readonly identifier: string;
  readonly key: string;
  /**
   * How long a request may go without any bytes moving before it fails, in milliseconds; default
   * 60000. A long-poll claim adds its wait to this.
   */
  readonly timeoutMs?: number;
}

export interface RequestOptions {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly query?: object;
  readonly body?: unknown;
  /** A raw body streamed as application/octet-stream. */
  readonly stream?: Readable | Buffer;
  readonly headers?: Record<string, string>;
  /** Extra milliseconds the server may stay silent (a long-poll wait). */
  readonly waitMs?: number;
}

/** A response whose body has not been read yet. */
export interface ClientResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The body as a stream: read it or destroy it, or the connection stays busy. */
  readonly body: Readable;
  json<T>(): Promise<T>;
}

// Keep-alive agents: a compute service talks to one server all day, and a fresh TLS handshake per
// request would cost more than the request. (Node's fetch costs about four times the CPU of
// http.request per small request, which is why the client does not use it.)
// A streamed body cannot be sent again, so it never rides on a kept-alive connection that the
// server or a proxy (nginx reloading, a server draining) may close just as the request starts.
interface Transport {
  request: typeof http.request;
  agent: http.Agent;
  freshConnectionAgent: http.Agent;
}
const transports: Partial<Record<string, Transport>> = {
  'http:': {
    request: http.request,
    agent: new http.Agent({ keepAlive: true }),
    freshConnectionAgent: new http.Agent({ keepAlive: false }),
  },
};

/** The transport for a protocol; `node:https` (TLS and its crypto) loads only for an https URL. */
function transport(protocol: string): Transport {
  let found = transports[protocol];
  if (!found && protocol === 'https:') {
    const https = createRequire(import.meta.url)('node:https') as typeof HttpsModule;
    found = transports[protocol] = {
      request: https.request,
      agent: new https.Agent({ keepAlive: true }),
      freshConnectionAgent: new https.Agent({ keepAlive: false }),
    };
  }
  if (!found) throw new AthanorError('invalid_argument', `unsupported URL protocol '${protocol}'`);
  return found;
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
    const body = await response.json<{ access_token: string }>();
    this.#token = body.access_token;
    return this.#token;
  }

  async #send(path: string, request: RequestOptions, token?: string): Promise<ClientResponse> {
    const url = new URL(`${this.#base}${path}`);
    for (const [name, value] of Object.entries(request.query ?? {}) as [string, unknown][]) {
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(name, String(item));
      else if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { ...request.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: Readable | Buffer | undefined;
    if (request.stream !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      body = request.stream;
    } else if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = Buffer.from(JSON.stringify(request.body));
    }
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
    const unreachable = (cause: unknown): never => {
      throw new AthanorError(
        'server_unreachable',
        `cannot reach the Athanor server at ${this.#base}: ${(cause as Error).message}. Check ATHANOR_URL and that the server runs`,
        { cause },
      );
    };
    let response = await this.#exchange(url, request, headers, body).catch(unreachable);
    const location = response.headers.location;
    if (response.statusCode === 302 && location && (request.method ?? 'GET') === 'GET') {
      // A download handed to the object store (a presigned URL): fetched without our token.
      response.resume();
      response = await this.#exchange(new URL(location, url), { method: 'GET' }, {}, undefined).catch(
        unreachable,
      );
    }
    const status = response.statusCode ?? 0;
    const result: ClientResponse = {
      status,
      headers: response.headers,
      body: response,
      json: async <T>() => JSON.parse((await readAll(response)).toString('utf8')) as T,
    };
    if (status < 200 || status >= 300) {
      const error = await responseError(result, response.statusMessage ?? '');
      // Refused before the whole body was sent (a stale lease, too large): stop sending it.
      if (body !== undefined && !Buffer.isBuffer(body)) body.destroy();
      throw error;
    }
    return result;
  }

  /** One HTTP exchange: resolves with the response once its headers arrive. */
  #exchange(
    url: URL,
    request: RequestOptions,
    headers: Record<string, string>,
    body: Readable | Buffer | undefined,
    retried = false,
  ): Promise<http.IncomingMessage> {
    const { request: send, agent: kept, freshConnectionAgent } = transport(url.protocol);
    const streamed = body !== undefined && !Buffer.isBuffer(body);
    // The resend takes a new connection too: the other idle ones in the pool may be as stale.
    const agent = streamed || retried ? freshConnectionAgent : kept;
    const idleMs = (this.options.timeoutMs ?? 60_000) + (request.waitMs ?? 0);
    return new Promise((resolve, reject) => {
      // `timeout` also covers connecting; setTimeout alone starts once the socket is connected.
      const req = send(url, { method: request.method ?? 'GET', headers, agent, timeout: idleMs }, resolve);
      req.setTimeout(idleMs, () => req.destroy(new Error(`no answer within ${idleMs} ms`)));
      req.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive connection the peer closed while idle fails before the request reached
        // anyone (Node's documented case for req.reusedSocket): send it once more, on a new one.
        if (req.reusedSocket && error.code === 'ECONNRESET' && !streamed && !retried) {
          resolve(this.#exchange(url, request, headers, body, true));
        } else reject(error);
      });
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      // A body that fails mid-way destroys the request, which rejects through 'error' above.
      else pipeline(body, req).catch((error: unknown) => req.destroy(error as Error));
    });
  }

  /** Sends an authenticated request; on a 401 fetches a new token once and retries. */
  async request(path: string, request: RequestOptions = {}): Promise<ClientResponse> {
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
    return response.json<T>();
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function responseError(response: ClientResponse, statusText: string): Promise<AthanorError> {
  let code: string | undefined;
  let message = `HTTP ${response.status} ${statusText}`.trimEnd();
  try {
    const body = await response.json<{ error?: { code?: string; message?: string } }>();
    code = body.error?.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not a JSON error body (or it broke off): keep the status line
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
