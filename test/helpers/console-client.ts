/** A browser-like client of the console: keeps cookies, reads CSRF tokens out of the forms. */
export class ConsoleClient {
  readonly #cookies = new Map<string, string>();

  constructor(
    readonly url: string,
    readonly base = '/console',
  ) {}

  cookie(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  async request(
    method: 'GET' | 'POST',
    path: string,
    form?: Record<string, string | string[]>,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string; headers: Headers; location: string | null }> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form ?? {})) for (const one of [v].flat()) body.append(k, one);
    const response = await fetch(`${this.url}${path.startsWith('/') ? path : `${this.base}/${path}`}`, {
      method,
      redirect: 'manual',
      headers: {
        ...headers,
        ...(this.#cookies.size ? { cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? body.toString() : undefined,
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const [name, ...value] = (pair ?? '').split('=');
      if (!name) continue;
      if (/max-age=0/i.test(line) || value.join('=') === '') this.#cookies.delete(name.trim());
      else this.#cookies.set(name.trim(), value.join('='));
    }
    return {
      status: response.status,
      text: await response.text(),
      headers: response.headers,
      location: response.headers.get('location'),
    };
  }

  get(path: string) {
    return this.request('GET', path);
  }

  /** Posts a form with the CSRF token the page at `from` carries. */
  async post(from: string, action: string, form: Record<string, string | string[]>) {
    const page = await this.get(from);
    return this.request('POST', action, { _csrf: csrfOf(page.text), ...form });
  }

  async signIn(identifier: string, key: string) {
    const page = await this.get(`${this.base}/signin`);
    return this.request('POST', `${this.base}/signin`, { _csrf: csrfOf(page.text), identifier, key });
  }
}

export function csrfOf(pageText: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(pageText);
  if (!match?.[1]) throw new Error('the page carries no CSRF token');
  return match[1];
}
