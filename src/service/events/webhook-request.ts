import { createHmac } from 'node:crypto';
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { AthanorError } from '../../domain/errors.js';

/** How deliveries are sent; the defaults are the settings' defaults. */
export interface DeliveryLimits {
  /** Deliver to loopback and private addresses too (ATHANOR_WEBHOOK_ALLOW_PRIVATE); default false. */
  readonly allowPrivate: boolean;
  /** Whole request, connect to last byte; default 10000. */
  readonly timeoutMs: number;
  /** Response bytes read before the connection is cut; default 65536. */
  readonly maxResponseBytes: number;
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  blocked.addSubnet(net, prefix, 'ipv6');

/** True for loopback, private, link-local, shared, multicast and reserved addresses. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return blocked.check(mapped[1], 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return blocked.check(address, 'ipv4');
}

/**
 * Checks a webhook URL as given: http or https, a host, no credentials in it. Throws a 400 naming
 * `field`.
 */
export function parseWebhookUrl(text: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AthanorError('validation_failed', `${field} is not a URL: give http(s)://host/path`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new AthanorError(
      'validation_failed',
      `${field} must be an http:// or https:// URL, not ${url.protocol}`,
    );
  if (url.username || url.password)
    throw new AthanorError(
      'validation_failed',
      `${field} must not carry credentials: the signature authenticates deliveries`,
    );
  return url;
}

/** The addresses a host resolves to now. */
async function resolveHost(hostname: string): Promise<string[]> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return [bare];
  const found = await dns.promises.lookup(bare, { all: true, verbatim: true });
  return found.map((f) => f.address);
}

/**
 * Refuses a URL whose host is or resolves to a loopback or private address, unless the operator
 * allows them. `field` names the field in the message.
 */
export async function checkWebhookTarget(url: URL, allowPrivate: boolean, field: string): Promise<void> {
  if (allowPrivate) return;
  let addresses: string[];
  try {
    addresses = await resolveHost(url.hostname);
  } catch {
    throw new AthanorError('validation_failed', `${field}: the host '${url.hostname}' does not resolve`);
  }
  const inner = addresses.find(isPrivateAddress);
  if (inner !== undefined) {
    throw new AthanorError(
      'validation_failed',
      `${field} points at a loopback or private address (${inner}); deliveries go only to public addresses unless the operator sets ATHANOR_WEBHOOK_ALLOW_PRIVATE=1`,
    );
  }
}

/**
 * A lookup that refuses private addresses at connect time, so a name that resolved to a public
 * address when checked cannot be switched to an internal one for the delivery itself.
 */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 4);
      const list = addresses as unknown as dns.LookupAddress[];
      const usable = allowPrivate ? list : list.filter((a) => !isPrivateAddress(a.address));
      if (usable.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves only to private addresses`), {
          code: 'EPRIVATE',
        });
        return callback(refused, '', 4);
      }
      if (options.all)
        return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, usable);
      const first = usable[0]!;
      return callback(null, first.address, first.family);
    });
  };
}

/** The Standard Webhooks signature header value of one message: `v1,<base64 HMAC-SHA256>`. */
export function signPayload(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key)
    .update(`${messageId}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${signature}`;
}

export interface DeliveryAnswer {
  readonly ok: boolean;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly durationMs: number;
}

/**
 * Sends one signed message: POST with `webhook-id`, `webhook-timestamp`, `webhook-signature`.
 * A 2xx answer is a delivery; anything else (another status, a timeout, a refused address, a
 * connection error) is a failure with its reason. At most `maxResponseBytes` of the answer are read.
 */
export async function sendWebhook(
  target: { readonly url: string; readonly secret: string },
  message: { readonly id: string; readonly body: string },
  limits: DeliveryLimits,
): Promise<DeliveryAnswer> {
  const started = performance.now();
  const url = new URL(target.url);
  const timestamp = Math.floor(Date.now() / 1000);
  const bare = url.hostname.replace(/^\[|\]$/g, '');
  if (!limits.allowPrivate && isIP(bare) && isPrivateAddress(bare))
    return { ok: false, statusCode: null, error: `refused: ${bare} is a private address`, durationMs: 0 };
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<DeliveryAnswer>((resolve) => {
    let settled = false;
    const finish = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ok = error === null && statusCode !== null && statusCode >= 200 && statusCode < 300;
      resolve({ ok, statusCode, error, durationMs: Math.round(performance.now() - started) });
    };
    const req = request(
      url,
      {
        method: 'POST',
        lookup: guardedLookup(limits.allowPrivate),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'athanor-webhooks',
          'webhook-id': message.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signPayload(target.secret, message.id, timestamp, message.body),
        },
      },
      (response) => {
        let size = 0;
        const statusCode = response.statusCode ?? null;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limits.maxResponseBytes) {
            response.destroy();
            finish(statusCode, statusCode !== null && statusCode < 300 ? null : `HTTP ${statusCode}`);
          }
        });
        response.on('end', () =>
          finish(
            statusCode,
            statusCode !== null && statusCode < 300 && statusCode >= 200 ? null : `HTTP ${statusCode}`,
          ),
        );
        response.on('error', (error) => finish(statusCode, error.message));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(null, `no answer within ${limits.timeoutMs} ms`);
    }, limits.timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) =>
      finish(null, error.code ? `${error.code}: ${error.message}` : error.message),
    );
    req.end(message.body);
  });
}
