/** What ends a wait: anything but `undefined` and `false`. */
type Settled<T> = Exclude<T, undefined | false>;

/**
 * Polls `probe` every `intervalMs` until it returns a value (a condition: `true`); a probe that
 * throws has not settled yet (the dependency may be down). Fails after `timeoutMs` naming `what`
 * and the probe's last error. The one wait of the test suite: timings stay loose, since the
 * machine may be busy.
 */
export async function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<Settled<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as Settled<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason =
        lastError === undefined ? '' : ` (last: ${(lastError as Error).message ?? String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
