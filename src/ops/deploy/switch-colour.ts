import { exec } from 'node:child_process';
import { promisify } from 'node:util';
import { AthanorError } from '../../domain/errors.js';
import type { AuditRow } from '../../service/audit.js';
import { listAudit, recordAudit, recordFailure } from '../../service/audit.js';
import type { Store } from '../../store/open-store.js';
import type { ColourState } from './colour-probe.js';
import { probeColour } from './colour-probe.js';
import type { Colour, DeploySettings } from './deploy-settings.js';
import { colours, otherColour } from './deploy-settings.js';
import type { ProxyWorkers } from './proxy-workers.js';
import { proxyWorkers, workersStillRunning } from './proxy-workers.js';
import { liveColourOf, readUpstream, renderUpstream, writeUpstreamAtomically } from './upstream-file.js';

const run = promisify(exec);

/** Why a colour is not ready that no waiting fixes: the start guard would refuse this release. */
const schemaRefusals: ReadonlySet<string> = new Set(['schema_newer', 'schema_behind', 'migration_drift']);

export interface DeployStatus {
  readonly live: Colour | undefined;
  readonly upstreamFile: string;
  readonly colours: readonly (ColourState & { readonly live: boolean })[];
}

export async function deployStatus(settings: DeploySettings): Promise<DeployStatus> {
  const live = liveColourOf(await readUpstream(settings.upstreamFile));
  const states = await Promise.all(colours.map((c) => probeColour(c, settings.urls[c])));
  return {
    live,
    upstreamFile: settings.upstreamFile,
    colours: states.map((s) => ({ ...s, live: s.colour === live })),
  };
}

export interface SwitchOutcome {
  readonly from: Colour | undefined;
  readonly to: Colour;
  readonly fromVersion: string | undefined;
  readonly toVersion: string | undefined;
  /** False when the target was live already and nothing changed. */
  readonly switched: boolean;
  /** Requests still in flight on the retired colour when the wait ended (0: drained). */
  readonly retiredInFlight: number;
  readonly drainedMs: number;
}

export interface SwitchOptions {
  readonly actor: string;
  /** `switch` or `rollback`: the audit action and the words of the messages. */
  readonly verb: 'switch' | 'rollback';
  /** Each step as it happens, for the operator to watch. */
  readonly onStep?: (line: string) => void;
}

async function runProxyCommand(what: string, command: string): Promise<void> {
  try {
    await run(command, { timeout: 60_000 });
  } catch (error) {
    const output = `${(error as { stderr?: string }).stderr ?? ''}`.trim() || (error as Error).message;
    throw new AthanorError('deploy_proxy_failed', `${what} ('${command}') failed: ${output}`, {
      cause: error,
    });
  }
}

/**
 * Points the proxy at `target`: only when it is ready and its release accepts the database's
 * schema; writes the upstream file atomically, checks and reloads the proxy (restoring the old
 * file and reloading again if either fails, so the proxy always has a live colour), then waits
 * until the retired colour has no request in flight. Audited, failures included.
 */
export async function switchColour(
  store: Store,
  settings: DeploySettings,
  target: Colour,
  options: SwitchOptions,
): Promise<SwitchOutcome> {
  const step = options.onStep ?? (() => {});
  const previousText = await readUpstream(settings.upstreamFile);
  const from = liveColourOf(previousText);
  const event = { actor: options.actor, action: `deploy.${options.verb}`, target };
  try {
    const [targetState, retiredState] = await Promise.all([
      probeColour(target, settings.urls[target]),
      probeColour(otherColour(target), settings.urls[otherColour(target)]),
    ]);
    if (from === target) {
      step(`${target} is live already; nothing to do`);
      return {
        from,
        to: target,
        fromVersion: targetState.version,
        toVersion: targetState.version,
        switched: false,
        retiredInFlight: 0,
        drainedMs: 0,
      };
    }
    if (!targetState.ready) {
      if (targetState.code && schemaRefusals.has(targetState.code)) {
        throw new AthanorError(
          targetState.code === 'migration_drift' ? 'migration_drift' : 'schema_newer',
          `${target} (${targetState.version ?? 'unknown version'}) cannot run against the database's schema, so ` +
            `${options.verb} refused: ${targetState.message ?? targetState.code}`,
        );
      }
      throw new AthanorError(
        'deploy_not_ready',
        `${target} at ${targetState.url} is not ready (${targetState.code}: ${targetState.message}); ` +
          `${from ?? 'the live colour'} keeps serving. Start it or wait until its /readyz answers 200`,
      );
    }
    step(`${target} ${targetState.version} is ready at ${targetState.url} (schema ${targetState.schema})`);
    await writeUpstreamAtomically(settings.upstreamFile, renderUpstream(target, settings.urls[target]));
    step(`wrote ${settings.upstreamFile}`);
    // The workers serving now: once they have all exited, nothing sends to the retired colour.
    const oldWorkers = await proxyWorkers(settings.proxyPidFile);
    try {
      await runProxyCommand('the proxy configuration check', settings.testCommand);
      await runProxyCommand('the proxy reload', settings.reloadCommand);
    } catch (error) {
      await writeUpstreamAtomically(settings.upstreamFile, previousText);
      await run(settings.reloadCommand, { timeout: 60_000 }).catch(() => {});
      throw new AthanorError(
        'deploy_proxy_failed',
        `${(error as Error).message}; ${settings.upstreamFile} was put back, ${from ?? 'nothing'} stays live`,
        { cause: error },
      );
    }
    step(`reloaded the proxy: ${target} is live`);
    const drain = from
      ? await waitForDrain(settings, from, step, oldWorkers)
      : { inFlight: 0, receiving: false, waitedMs: 0, oldWorkers: [] };
    const outcome: SwitchOutcome = {
      from,
      to: target,
      fromVersion: from ? retiredState.version : undefined,
      toVersion: targetState.version,
      switched: true,
      retiredInFlight: drain.inFlight,
      drainedMs: drain.waitedMs,
    };
    await recordAudit(store, {
      ...event,
      outcome: 'ok',
      details: {
        ...outcome,
        drained: drain.inFlight === 0 && !drain.receiving && drain.oldWorkers.length === 0,
      },
    });
    if (from && drain.oldWorkers.length > 0) {
      throw new AthanorError(
        'deploy_drain_timeout',
        `${target} is live in ${settings.upstreamFile}, but nginx's workers from before the reload ` +
          `(pid ${drain.oldWorkers.join(', ')}) still ran ${settings.drainTimeoutMs} ms ` +
          `(ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS) after it, and may still send requests to ${from}: did ` +
          `'${settings.reloadCommand}' reload the nginx of ${settings.proxyPidFile}? Check it before stopping ${from}`,
        { details: { ...outcome } },
      );
    }
    if (from && drain.receiving) {
      throw new AthanorError(
        'deploy_drain_timeout',
        `${target} is live in ${settings.upstreamFile}, but ${from} still received new requests ` +
          `${settings.drainTimeoutMs} ms (ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS) after the reload: does ` +
          `'${settings.reloadCommand}' reload the proxy that serves this traffic? Check it before stopping ${from}`,
        { details: { ...outcome } },
      );
    }
    if (from && drain.inFlight > 0) {
      throw new AthanorError(
        'deploy_drain_timeout',
        `${target} is live, but ${from} still had ${drain.inFlight} request(s) in flight after ` +
          `${settings.drainTimeoutMs} ms (ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS); stop it with SIGTERM, which lets them finish`,
        { details: { ...outcome } },
      );
    }
    return outcome;
  } catch (error) {
    if (!(error instanceof AthanorError && error.code === 'deploy_drain_timeout')) {
      await recordFailure(store, event, error);
    }
    throw error;
  }
}

/**
 * How long the retired colour must receive no new request, with none in flight, before a switch
 * calls it drained when nginx's workers cannot be watched (no pid file, no /proc): `nginx -s
 * reload` returns before the old workers stop sending to it, so a single probe that finds
 * nothing in flight can come while they still do.
 */
export const drainQuietMs = 1_000;

interface Drain {
  readonly inFlight: number;
  readonly receiving: boolean;
  readonly waitedMs: number;
  /** nginx workers from before the reload still running when the wait ended. */
  readonly oldWorkers: readonly number[];
}

/**
 * Waits until the retired colour is drained. With nginx's workers from before the reload known,
 * exactly: once they have exited (each finishes the requests it holds first), nothing can send
 * to the retired colour any more, and it is drained when it has nothing in flight. Without
 * them, on a quiet window: nothing in flight and no new request for `drainQuietMs`.
 */
async function waitForDrain(
  settings: DeploySettings,
  retired: Colour,
  step: (line: string) => void,
  oldWorkers: ProxyWorkers | undefined,
): Promise<Drain> {
  const started = Date.now();
  if (oldWorkers) {
    for (;;) {
      const running = await workersStillRunning(oldWorkers);
      if (running.length === 0) break;
      if (Date.now() - started >= settings.drainTimeoutMs) {
        const state = await probeColour(retired, settings.urls[retired]);
        return {
          inFlight: state.inFlight ?? 0,
          receiving: false,
          waitedMs: Date.now() - started,
          oldWorkers: running,
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    step(
      `nginx's workers from before the reload (pid ${oldWorkers.workerPids.join(', ')}) have exited ` +
        `(waited ${Date.now() - started} ms); nothing sends to ${retired} any more`,
    );
  } else {
    step(`no nginx workers found from ${settings.proxyPidFile}: waiting until ${retired} goes quiet`);
  }
  // The first probe that found it idle, and the request count it had then (the quiet window).
  let idleSince: { at: number; requests: number | undefined } | undefined;
  let received = false;
  for (;;) {
    const probedAt = Date.now();
    const state = await probeColour(retired, settings.urls[retired]);
    const waitedMs = Date.now() - started;
    // A colour that stopped answering has nothing in flight any more and receives nothing.
    if (!state.reachable) {
      step(`${retired} no longer answers (waited ${waitedMs} ms)`);
      return { inFlight: 0, receiving: false, waitedMs, oldWorkers: [] };
    }
    const inFlight = state.inFlight ?? 0;
    if (oldWorkers && inFlight === 0) {
      step(`${retired} has no request in flight (waited ${waitedMs} ms); it can be stopped`);
      return { inFlight: 0, receiving: false, waitedMs, oldWorkers: [] };
    }
    if (!oldWorkers) {
      // New requests since the last probe start the quiet window again.
      received = idleSince !== undefined && state.requests !== idleSince.requests;
      if (inFlight > 0) idleSince = undefined;
      else if (!idleSince || received) idleSince = { at: probedAt, requests: state.requests };
      else if (probedAt - idleSince.at >= drainQuietMs) {
        step(
          `${retired} has no request in flight and received none for ${drainQuietMs} ms ` +
            `(waited ${waitedMs} ms); it can be stopped`,
        );
        return { inFlight: 0, receiving: false, waitedMs, oldWorkers: [] };
      }
    }
    // Out of time: idle at the last probe, with no new request since the one before, counts as
    // drained (a drain timeout shorter than the quiet window is the operator's choice).
    if (waitedMs >= settings.drainTimeoutMs)
      return { inFlight, receiving: inFlight === 0 && received, waitedMs, oldWorkers: [] };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The colour that was live before the last switch, from the audit log. */
export async function previousColour(store: Store): Promise<Colour | undefined> {
  const [last] = await deployLog(store, 1, true);
  const details = last?.details ? (JSON.parse(last.details) as { from?: Colour }) : undefined;
  return details?.from;
}

export async function rollbackColour(
  store: Store,
  settings: DeploySettings,
  options: Omit<SwitchOptions, 'verb'>,
): Promise<SwitchOutcome> {
  const back = await previousColour(store);
  if (!back) {
    const error = new AthanorError(
      'invalid_argument',
      'there is no earlier switch to roll back: the audit log holds no deploy that changed the live colour',
    );
    await recordFailure(store, { actor: options.actor, action: 'deploy.rollback' }, error);
    throw error;
  }
  return switchColour(store, settings, back, { ...options, verb: 'rollback' });
}

/** Switches and rollbacks, newest first; `changedOnly` keeps those that moved the live colour. */
export async function deployLog(store: Store, limit: number, changedOnly = false): Promise<AuditRow[]> {
  const rows = await listAudit(store, { action: 'deploy', limit: changedOnly ? 1000 : limit });
  const newestFirst = [...rows].reverse();
  const kept = changedOnly
    ? newestFirst.filter(
        (r) =>
          r.outcome === 'ok' &&
          r.details &&
          (JSON.parse(r.details) as { switched?: boolean }).switched === true,
      )
    : newestFirst;
  return kept.slice(0, limit);
}
