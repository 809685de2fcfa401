import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { maxBatchedResultBytes } from '../../src/service/exchange.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const bytesOf = async (stream: Readable) => Buffer.concat(await stream.toArray());

describeEachBackend('a second result under the same lease', (backend) => {
  it('PUT …/result: the same bytes and outcome get the recorded answer; other bytes or outcome get 409 result_conflict', async () => {
    const server = await startTestServer(backend, tempDir());
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 2 });
    const { id } = await compute.register('conflict-put');
    const [small, large] = await compute.claim(id, { count: 2 });

    // Small enough to be read whole (and kept in its row).
    const first = Buffer.from('the first answer');
    const answer = await compute.submitResult(small!.task, small!.leaseToken, 'ok', first);
    expect(await compute.submitResult(small!.task, small!.leaseToken, 'ok', first)).toEqual(answer);
    for (const [outcome, body] of [
      ['ok', Buffer.from('another answer')],
      ['failed', first],
    ] as const) {
      const refused = compute.submitResult(small!.task, small!.leaseToken, outcome, body);
      await expect(refused).rejects.toMatchObject({ code: 'result_conflict', status: 409 });
      await expect(refused).rejects.toThrow(sha256(first));
    }

    // Larger than what is read whole: streamed into the object store.
    const big = Buffer.alloc(maxBatchedResultBytes + 1000, 'a');
    const other = Buffer.alloc(maxBatchedResultBytes + 1000, 'b');
    const streamed = () => Readable.from([big.subarray(0, 4096), big.subarray(4096)]);
    const bigAnswer = await compute.submitResult(large!.task, large!.leaseToken, 'ok', streamed());
    expect(bigAnswer.sha256).toBe(sha256(big));
    expect(await compute.submitResult(large!.task, large!.leaseToken, 'ok', streamed())).toEqual(bigAnswer);
    const refused = compute.submitResult(large!.task, large!.leaseToken, 'ok', Readable.from([other]));
    await expect(refused).rejects.toMatchObject({ code: 'result_conflict', status: 409 });
    await expect(refused).rejects.toThrow(sha256(big));

    // What was recorded first is what every reader gets; each lease has one result.
    for (const [claim, body] of [
      [small!, first],
      [large!, big],
    ] as const) {
      const results = await user.taskResults(claim.task);
      expect(results).toHaveLength(1);
      expect(results[0]!.sha256).toBe(sha256(body));
      expect((await bytesOf(await user.downloadResult(results[0]!.id))).equals(body)).toBe(true);
      expect((await user.getTask(claim.task)).status).toBe('complete');
    }
  });

  it('the exchange: a repeat with other bytes, or a task named twice with other bytes, is refused with result_conflict', async () => {
    const server = await startTestServer(backend, tempDir());
    const { user, compute } = await queueClients(server);
    await networkWithTasks(user, { count: 3 });
    const { id } = await compute.register('conflict-exchange');
    const [a, b, c] = await compute.claim(id, { count: 3 });
    const ok = (claim: typeof a, text: string) => ({
      task: claim!.task,
      leaseToken: claim!.leaseToken,
      outcome: 'ok' as const,
      body: Buffer.from(text),
    });

    const first = await compute.exchange(id, {
      results: [ok(a, 'a1'), ok(b, 'b1'), ok(c, 'c1'), ok(c, 'c2'), ok(c, 'c1')],
    });
    expect(first.results.map((r) => r.result?.status ?? r.error?.code)).toEqual([
      'complete',
      'complete',
      'complete',
      'result_conflict',
      'complete',
    ]);
    expect(first.results[3]!.error).toMatchObject({ status: 409 });
    expect(first.results[3]!.error!.message).toContain(sha256(Buffer.from('c1')));
    expect(first.results[4]!.result).toEqual(first.results[2]!.result);

    const again = await compute.exchange(id, {
      results: [ok(a, 'a1'), ok(b, 'b2'), { ...ok(a, 'a1'), outcome: 'failed' as const }],
    });
    expect(again.results[0]!.result).toEqual(first.results[0]!.result);
    for (const refused of [again.results[1]!, again.results[2]!]) {
      expect(refused.error).toMatchObject({ code: 'result_conflict', status: 409 });
    }
    expect(again.results[1]!.error!.message).toContain(sha256(Buffer.from('b1')));
    // Through the other route too: the exchange's result is the recorded one.
    await expect(compute.submitResult(b!.task, b!.leaseToken, 'ok', Buffer.from('b3'))).rejects.toMatchObject(
      {
        code: 'result_conflict',
      },
    );

    for (const [claim, text] of [
      [a!, 'a1'],
      [b!, 'b1'],
      [c!, 'c1'],
    ] as const) {
      const results = await user.taskResults(claim.task);
      expect(results).toHaveLength(1);
      expect((await bytesOf(await user.downloadResult(results[0]!.id))).toString()).toBe(text);
    }
  });
});
