import { AthanorError } from '../domain/errors.js';
import { audited } from '../service/audit.js';
import type { Store } from '../store/open-store.js';
import { getSetting, putSetting } from '../store/queries/settings.js';

/** Maintenance mode as kept in the state store, so every replica sees the same answer. */
export interface MaintenanceState {
  readonly on: boolean;
  readonly reason: string | null;
  readonly since: string | null;
  readonly by: string | null;
}

const settingKey = 'maintenance';
const off: MaintenanceState = { on: false, reason: null, since: null, by: null };

export async function getMaintenance(store: Store): Promise<MaintenanceState> {
  const raw = await getSetting(store.db, settingKey);
  if (!raw) return off;
  try {
    return { ...off, ...(JSON.parse(raw) as Partial<MaintenanceState>) };
  } catch {
    return off;
  }
}

/** Switches maintenance mode on or off; audited. Returns the state before the change. */
export async function setMaintenance(
  store: Store,
  actor: string,
  on: boolean,
  reason?: string,
): Promise<MaintenanceState> {
  if (on && reason !== undefined && reason.length > 500) {
    throw new AthanorError('invalid_argument', 'the maintenance reason is longer than 500 characters');
  }
  return audited(store, { actor, action: on ? 'maintenance.on' : 'maintenance.off' }, async (trx) => {
    const raw = await getSetting(trx, settingKey);
    const before: MaintenanceState = raw
      ? { ...off, ...(JSON.parse(raw) as Partial<MaintenanceState>) }
      : off;
    const now = new Date().toISOString();
    const next: MaintenanceState = on
      ? {
          on: true,
          reason: reason ?? before.reason ?? 'maintenance',
          since: before.on ? before.since : now,
          by: actor,
        }
      : off;
    await putSetting(trx, settingKey, JSON.stringify(next), now);
    return { result: before, details: on ? { reason: next.reason } : {} };
  });
}

/**
 * A per-process view of maintenance mode re-read at most every `ttlMs`, so each request costs
 * no database read and every replica follows a change within that time.
 */
export class MaintenanceWatch {
  #state: MaintenanceState = off;
  #loadedAt = 0;
  #loading: Promise<MaintenanceState> | undefined;

  constructor(
    private readonly store: Store,
    private readonly ttlMs = 1000,
  ) {}

  async current(): Promise<MaintenanceState> {
    if (Date.now() - this.#loadedAt < this.ttlMs) return this.#state;
    this.#loading ??= getMaintenance(this.store)
      .then((state) => {
        this.#state = state;
        this.#loadedAt = Date.now();
        return state;
      })
      .finally(() => (this.#loading = undefined));
    return this.#loading;
  }
}

/** Servers re-read maintenance mode every second; this is how long a switch takes to reach all. */
export const maintenanceNoticeMs = 1200;

/**
 * Switches maintenance mode on for an operation (unless an operator already had it on) and
 * waits until every server has noticed; `resume()` switches it back off. Returns undefined when
 * it was on already, so an operator's own maintenance window is left alone.
 */
export async function pauseWrites(
  store: Store,
  actor: string,
  reason: string,
): Promise<{ resume(): Promise<void> } | undefined> {
  if ((await getMaintenance(store)).on) return undefined;
  await setMaintenance(store, actor, true, reason);
  await new Promise((resolve) => setTimeout(resolve, maintenanceNoticeMs));
  return { resume: async () => void (await setMaintenance(store, actor, false)) };
}
