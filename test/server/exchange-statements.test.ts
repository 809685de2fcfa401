import { expect, it } from 'vitest';
import type { Claim } from '../../src/client/index.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';
import { freshStore } from '../helpers/store.js';

const isTransactionStart = (sql: string) => /^\s*begin\b/i.test(sql);

describeEachBackend('one transaction per exchange', (backend) => {
  it('the results of a batch and the next claim: the same statements at 1, 10 and 100 results', async () => {
    const dir = tempDir();
    let recording: string[] | undefined;
    const { store } = await freshStore(backend, dir, {
      open: { onStatement: (sql) => recording?.push(sql) },
    });
    // No sweep, and no numbering of events, webhooks or strategies, runs while statements are
    // counted: each is a transaction of its own.
    const server = await startTestServer(backend, dir, {
      store,
      sweepIntervalMs: 3_600_000,
      eventsIntervalMs: 0,
    });
    const { user, compute } = await queueClients(server);
    const sizes = [1, 10, 100];
    const rounds = 3;
    const total = sizes.reduce((sum, n) => sum + n * (rounds + 1), 0);
    const { tasks } = await networkWithTasks(user, { count: total });
    const { id } = await compute.register('statements');

    const perExchange = new Map<number, number[]>();
    const transactions = new Map<number, number[]>();
    for (const size of sizes) {
      let held: Claim[] = (await compute.exchange(id, { results: [], claim: { count: size } })).claims;
      expect(held).toHaveLength(size);
      for (let round = 0; round < rounds; round++) {
        recording = [];
        const answer = await compute.exchange(id, {
          results: held.map((c) => ({
            task: c.task,
            leaseToken: c.leaseToken,
            outcome: 'ok' as const,
            body: Buffer.from(`result of ${c.task}`),
          })),
          claim: { count: size },
        });
        const statements = recording;
        recording = undefined;
        expect(answer.results.map((r) => r.result?.status)).toEqual(held.map(() => 'complete'));
        // The last round of a size claims what the next size's first exchange would: reported next.
        held = answer.claims;
        perExchange.set(size, [...(perExchange.get(size) ?? []), statements.length]);
        transactions.set(size, [
          ...(transactions.get(size) ?? []),
          statements.filter(isTransactionStart).length,
        ]);
      }
      // Tasks claimed by the last round stay leased; the next size claims fresh ones.
      expect(held).toHaveLength(size);
    }
    // A round may read the hub list again (it is kept for a second), so each size's fewest count.
    const fewest = sizes.map((size) => Math.min(...perExchange.get(size)!));
    expect(fewest, JSON.stringify(Object.fromEntries(perExchange))).toEqual(sizes.map(() => fewest[0]));
    for (const size of sizes) expect(transactions.get(size)).toEqual([1, 1, 1]);
    // Every reported result landed: 3 rounds of each size.
    const results = await server.store.db.selectFrom('results').select('task_id').execute();
    expect(results).toHaveLength(sizes.reduce((sum, n) => sum + n * rounds, 0));
    expect(new Set(results.map((r) => r.task_id)).size).toBe(results.length);
    expect(tasks).toHaveLength(total);
  });
});
