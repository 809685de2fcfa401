import type { FastifyInstance } from 'fastify';

/** Paths that report on the server itself; polling them must not count as traffic to drain. */
const probePaths: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/**
 * What a server knows about its own shutdown: whether it is draining (readiness answers 503),
 * how many requests are in flight, and a signal that ends waiting long-poll claims.
 */
export class ServerLifecycle {
  #inFlight = 0;
  #started = 0;
  #draining = false;
  readonly #closing = new AbortController();

  /** Requests being served now, probes excluded. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Requests received since the start, probes excluded. A switch watches it on the retired colour:
   * a proxy reload takes effect some time after the reload command returns, and until it has, the
   * old proxy workers still send here even at moments when nothing is in flight.
   */
  get started(): number {
    return this.#started;
  }

  /** True from the first stop signal on: `/readyz` answers 503 so balancers stop sending. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Aborted when the listener closes: long-poll claims return at once, with what they have. */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  beginDrain(): void {
    this.#draining = true;
  }

  beginClose(): void {
    this.#draining = true;
    this.#closing.abort();
  }

  /** Counts every request from its arrival until its response is finished or its socket closes. */
  track(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => {
      if (probePaths.has(request.url.split('?')[0] ?? '')) return;
      this.#inFlight++;
      this.#started++;
      reply.raw.once('close', () => this.#inFlight--);
    });
    // A keep-alive connection that was busy when the listener closed would stay open once idle and
    // hold the close forever: answers sent from then on tell the client to reconnect elsewhere.
    app.addHook('onSend', async (_request, reply) => {
      if (this.#closing.signal.aborted) void reply.header('connection', 'close');
    });
  }

  /** Closes connections that went idle since the close began (an answer sent before it). */
  closeIdleWhileClosing(app: FastifyInstance): () => void {
    const timer = setInterval(() => app.server.closeIdleConnections(), 250);
    return () => clearInterval(timer);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
