import { AthanorError } from '../domain/errors.js';

/** Failed keys in a row, per identity and address, before each further try must wait. */
export const freeFailures = 5;
/** The first wait after the free failures; it doubles with each further failure. */
export const firstBackoffMs = 1000;
/** The longest wait: the backoff slows a guesser down, it never locks anyone out for long. */
export const maxBackoffMs = 60_000;

const windowMs = 60_000;

interface FailureRecord {
  failures: number;
  retryAt: number;
  lastAt: number;
}

interface AddressWindow {
  startedAt: number;
  checks: number;
  reported: boolean;
}

/** What the throttle noticed, for the audit log. */
export type ThrottleEvent =
  | { readonly kind: 'backoff'; readonly identity: string; readonly address: string; readonly waitMs: number }
  | { readonly kind: 'address_limited'; readonly address: string; readonly limit: number };

/**
 * Limits key guessing on the token routes, in this process:
 * - per address, at most `perAddressPerMinute` key checks a minute (each costs an argon2 hash);
 * - per identity and address, after `freeFailures` wrong keys in a row every further try waits
 *   1 s, 2 s, 4 s … up to 60 s; a right key resets it.
 * A refusal is decided before the key is checked and does not count as a check, so a guesser
 * hammering one identity neither extends its own wait nor uses up the address's checks: another
 * identity behind the same address still signs in, and the same identity from another address
 * is not slowed at all.
 */
export class LoginThrottle {
  readonly #failures = new Map<string, FailureRecord>();
  readonly #addresses = new Map<string, AddressWindow>();

  constructor(
    private readonly perAddressPerMinute: number,
    private readonly onEvent: (event: ThrottleEvent) => void = () => {},
  ) {}

  /** Refuses (429) a key check that must wait; otherwise counts it against the address. */
  admit(identity: string, address: string, now = Date.now()): void {
    const record = this.#failures.get(`${identity}\u0000${address}`);
    if (record && record.retryAt > now) {
      throw tooMany(record.retryAt - now, `too many wrong keys for ${identity} from this address`);
    }
    let window = this.#addresses.get(address);
    if (!window || now - window.startedAt >= windowMs) {
      window = { startedAt: now, checks: 0, reported: false };
      this.#addresses.set(address, window);
    }
    if (window.checks >= this.perAddressPerMinute) {
      if (!window.reported) {
        window.reported = true;
        this.onEvent({ kind: 'address_limited', address, limit: this.perAddressPerMinute });
      }
      throw tooMany(window.startedAt + windowMs - now, 'too many token requests from this address');
    }
    window.checks += 1;
    this.#prune(now);
  }

  failed(identity: string, address: string, now = Date.now()): void {
    const key = `${identity}\u0000${address}`;
    const record = this.#failures.get(key) ?? { failures: 0, retryAt: 0, lastAt: now };
    record.failures += 1;
    record.lastAt = now;
    if (record.failures >= freeFailures) {
      const waitMs = Math.min(maxBackoffMs, firstBackoffMs * 2 ** (record.failures - freeFailures));
      record.retryAt = now + waitMs;
      this.onEvent({ kind: 'backoff', identity, address, waitMs });
    }
    this.#failures.set(key, record);
  }

  succeeded(identity: string, address: string): void {
    this.#failures.delete(`${identity}\u0000${address}`);
  }

  /** Forgets records nobody touched for longer than the longest wait, so memory stays bounded. */
  #prune(now: number): void {
    if (this.#failures.size + this.#addresses.size < 10_000) return;
    for (const [key, record] of this.#failures)
      if (now - record.lastAt > maxBackoffMs && record.retryAt <= now) this.#failures.delete(key);
    for (const [key, window] of this.#addresses)
      if (now - window.startedAt >= windowMs) this.#addresses.delete(key);
  }
}

function tooMany(waitMs: number, why: string): AthanorError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new AthanorError('rate_limited', `${why}: retry in ${seconds} s`, {
    details: { retryAfterSeconds: seconds },
  });
}
