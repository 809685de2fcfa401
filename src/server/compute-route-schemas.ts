import type { Static } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { maxLogAppendBytes } from '../domain/live-log.js';
import { maxProgressMessageChars } from '../domain/progress.js';
import type { ServiceHeartbeat } from '../service/compute-services.js';
import * as S from './schemas.js';

/** A heartbeat's body: the leases the service holds, each with its progress and new log lines. */
export const HeartbeatBody = Type.Object({
  leases: Type.Optional(
    Type.Array(
      Type.Object({
        task: S.Key,
        leaseToken: S.LeaseToken,
        progress: Type.Optional(
          Type.Object(
            {
              fraction: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
              message: Type.Optional(Type.String({ maxLength: maxProgressMessageChars })),
            },
            {
              additionalProperties: false,
              description: "the task's progress since the last heartbeat",
            },
          ),
        ),
        log: Type.Optional(
          Type.Object(
            {
              offset: Type.Integer({
                minimum: 0,
                description: "where `text` starts in the attempt's log, in bytes",
              }),
              text: Type.String({ maxLength: maxLogAppendBytes }),
            },
            {
              additionalProperties: false,
              description:
                "what the attempt's log gained since the last heartbeat; " +
                'bytes the server already holds are skipped, so it may be sent again',
            },
          ),
        ),
      }),
      {
        maxItems: 1000,
        description: 'every lease the service holds: task and fencing token',
      },
    ),
  ),
});

/** The heartbeat's body in the service's terms. */
export function heartbeatReport(body: Static<typeof HeartbeatBody>): ServiceHeartbeat {
  const listed = body.leases;
  return {
    leases: listed?.map((l) => ({ taskId: l.task, leaseToken: l.leaseToken })),
    progress: listed?.flatMap((l) =>
      l.progress
        ? [
            {
              taskId: l.task,
              leaseToken: l.leaseToken,
              fraction: l.progress.fraction ?? null,
              message: l.progress.message ?? null,
            },
          ]
        : [],
    ),
    logs: listed?.flatMap((l) =>
      l.log
        ? [{ taskId: l.task, leaseToken: l.leaseToken, offsetBytes: l.log.offset, text: l.log.text }]
        : [],
    ),
  };
}
