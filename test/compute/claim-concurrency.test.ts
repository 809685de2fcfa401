import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

describeEachBackend('concurrent claims', (backend) => {
  const dir = tempDir();

  it(
    'a claim for one task gets one while waiting tasks outnumber the claims in flight',
    { timeout: 300_000 },
    async () => {
      const server = await startTestServer(backend, dir);
      const { user, compute } = await queueClients(server);
      const taskCount = 150;
      const claimers = 16;
      await networkWithTasks(user, { count: taskCount });
      const services = await Promise.all(Array.from({ length: claimers }, () => compute.register('c')));

      let claimed = 0;
      let inFlight = 0;
      const emptyWhileWorkWaited: number[] = [];
      const claimedIds: string[] = [];
      await Promise.all(
        services.map(async ({ id }) => {
          for (;;) {
            inFlight += 1;
            const got = await compute.claim(id, { count: 1 });
            inFlight -= 1;
            // Tasks are only claimed here, never returned, and each claim in flight takes at most
            // one: with fewer than taskCount answered or in flight, a task waited all through this
            // claim.
            if (got.length === 0 && claimed + inFlight < taskCount) emptyWhileWorkWaited.push(claimed);
            claimed += got.length;
            claimedIds.push(...got.map((c) => c.task));
            if (got.length === 0) return;
          }
        }),
      );
      expect(emptyWhileWorkWaited).toEqual([]);
      expect(new Set(claimedIds).size).toBe(taskCount);
      expect(claimedIds).toHaveLength(taskCount);
    },
  );
});
