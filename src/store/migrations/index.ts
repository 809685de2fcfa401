import { migration0001 } from './0001-identities-audit-settings.js';
import { migration0002 } from './0002-queue.js';
import { migration0003 } from './0003-claim-order.js';
import { migration0004 } from './0004-identity-roles.js';
import { migration0005 } from './0005-task-attempts.js';
import { migration0006 } from './0006-identity-quotas.js';
import { migration0007 } from './0007-attempt-logs-progress.js';
import { migration0008 } from './0008-attempt-log-chunks.js';
import { migration0009 } from './0009-inline-results.js';
import { migration0010 } from './0010-console-sessions.js';
import { migration0011 } from './0011-compute-managers.js';
import { migration0012 } from './0012-events-webhooks-strategies.js';
import type { Migration } from './migration.js';

/** Every migration this release knows, in order. Append only: never edit or remove one. */
export const migrations: readonly Migration[] = [
  migration0001,
  migration0002,
  migration0003,
  migration0004,
  migration0005,
  migration0006,
  migration0007,
  migration0008,
  migration0009,
  migration0010,
  migration0011,
  migration0012,
];
