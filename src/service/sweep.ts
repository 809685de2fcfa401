import type { Store } from '../store/open-store.js';
import { closeOpenAttempts } from '../store/queries/attempts.js';
import * as q from '../store/queries/compute.js';
import { expireManagers } from '../store/queries/managers.js';
import { iso } from './compute-services.js';
import { recordServiceLost } from './events/record-events.js';

/**
 * One sweep: expired registrations (of services and managers) become `expired`, and every running task whose lease ran out
 * or whose service expired returns to `waiting`. Only one replica sweeps at a time.
 */
export async function sweep(store: Store, now = Date.now()) {
  return store.transaction(async (trx) => {
    if (!(await store.backend.tryLeaderLock(trx, 'sweeper')))
      return { leader: false, expiredLeases: 0, expiredServices: 0, expiredManagers: 0 };
    const at = iso(now);
    const services = await q.expireServices(trx, at);
    const managers = await expireManagers(trx, at);
    let released = 0;
    for (const serviceId of services) {
      const tasks = await q.releaseLeases(trx, { serviceId }, at);
      await recordServiceLost(trx, serviceId, tasks, at);
      await closeOpenAttempts(trx, tasks, {
        outcome: 'expired',
        endedAt: at,
        reason: 'its compute service stopped heartbeating',
      });
      released += tasks.length;
    }
    const expired = await q.releaseLeases(trx, { expiredBefore: at }, at);
    await closeOpenAttempts(trx, expired, {
      outcome: 'expired',
      endedAt: at,
      reason: 'the lease ran out without a heartbeat',
    });
    released += expired.length;
    return {
      leader: true,
      expiredLeases: released,
      expiredServices: services.length,
      expiredManagers: managers.length,
    };
  });
}
