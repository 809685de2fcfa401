import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal.js';
import { claimDuration } from '../ops/metrics.js';
import type { ClaimRequest } from '../service/claims.js';
import { claimTasks } from '../service/claims.js';
import type { ComputeTimings } from '../service/compute-services.js';
import type { Store } from '../store/open-store.js';
import { sleepUnless } from './lifecycle.js';

/**
 * Claims for a compute service, waiting up to `claim.waitMs` for work: tries again after 100 ms,
 * 200 ms, … up to 1 s apart, and answers at once (maybe `[]`) when the client went away or the
 * server began shutting down. The claims route and the exchange route share it.
 */
export async function longPollClaim(
  store: Store,
  principal: Principal,
  serviceId: string,
  claim: ClaimRequest & { waitMs?: number | undefined },
  timings: ComputeTimings,
  request: FastifyRequest,
  closing: AbortSignal,
): Promise<Awaited<ReturnType<typeof claimTasks>>> {
  const deadline = Date.now() + (claim.waitMs ?? 0);
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    const stopTimer = claimDuration.startTimer();
    const claims = await claimTasks(store, principal, serviceId, claim, timings);
    stopTimer();
    if (claims.length > 0 || Date.now() + delay > deadline || request.socket.destroyed || closing.aborted)
      return claims;
    await sleepUnless(delay, closing);
  }
}
