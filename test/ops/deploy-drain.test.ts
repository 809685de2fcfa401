import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AthanorError } from '../../src/domain/errors.js';
import type { DeploySettings } from '../../src/ops/deploy/index.js';
import {
  drainQuietMs,
  renderUpstream,
  switchColour,
  writeUpstreamAtomically,
} from '../../src/ops/deploy/index.js';
import { tempDir } from '../helpers/backends.js';
import { freshStore } from '../helpers/store.js';

/**
 * A colour's `/readyz` as the retired one looks right after a proxy reload: nothing in flight
 * at any probe, while the old proxy workers still send it requests (the count grows) until
 * `receivingFor` ms after the switch started, or forever.
 */
async function fakeColour(
  state: 'ready' | 'retired',
  receivingFor = Number.POSITIVE_INFINITY,
): Promise<{ url: string; began: number; lastRequestAt: () => number }> {
  const began = Date.now();
  let requests = 0;
  let lastRequestAt = began;
  const server = http.createServer((_request, response) => {
    if (state === 'retired' && Date.now() - began < receivingFor) {
      requests += 3;
      lastRequestAt = Date.now();
    }
    response.setHeader('content-type', 'application/json');
    response.end(
      JSON.stringify({
        status: 'ready',
        version: '1.0.0',
        schema: 1,
        releaseSchema: 1,
        inFlight: 0,
        requests,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    began,
    lastRequestAt: () => lastRequestAt,
  };
}

describe('deploy switch waits for the retired colour to go quiet', () => {
  const dir = tempDir();

  async function setUp(receivingFor: number, drainTimeoutMs: number) {
    const { store } = await freshStore('sqlite', dir);
    const blue = await fakeColour('retired', receivingFor);
    const green = await fakeColour('ready');
    const upstreamFile = path.join(dir, `upstream-${Math.random().toString(36).slice(2)}.conf`);
    await writeUpstreamAtomically(upstreamFile, renderUpstream('blue', blue.url));
    const settings: DeploySettings = {
      urls: { blue: blue.url, green: green.url },
      upstreamFile,
      testCommand: 'true',
      reloadCommand: 'true',
      drainTimeoutMs,
      // No nginx here: the switch falls back to the quiet window.
      proxyPidFile: path.join(dir, 'no-nginx.pid'),
    };
    return { store, settings, blue };
  }

  it('not drained while the old proxy workers still send it requests, though none is in flight at a probe', async () => {
    const { store, settings, blue } = await setUp(1_500, 30_000);
    const steps: string[] = [];
    const outcome = await switchColour(store, settings, 'green', {
      actor: 'test',
      verb: 'switch',
      onStep: (line) => steps.push(line),
    });
    const returned = Date.now();
    expect(outcome.switched).toBe(true);
    expect(outcome.retiredInFlight).toBe(0);
    // Blue kept receiving for 1.5 s; the switch watched it all along and called it drained only a
    // quiet window after the last request reached it.
    expect(blue.lastRequestAt() - blue.began).toBeGreaterThanOrEqual(1_000);
    expect(returned - blue.lastRequestAt()).toBeGreaterThanOrEqual(drainQuietMs - 100);
    expect(steps.at(-1)).toMatch(/blue has no request in flight and received none for 1000 ms/);
  });

  it('a colour that keeps receiving until the drain timeout is reported, with a hint about the reload', async () => {
    const { store, settings } = await setUp(Number.POSITIVE_INFINITY, 2_000);
    const error = await switchColour(store, settings, 'green', { actor: 'test', verb: 'switch' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AthanorError);
    expect((error as AthanorError).code).toBe('deploy_drain_timeout');
    expect((error as AthanorError).message).toMatch(/blue still received new requests .* after the reload/);
  });
});
