import { expect, it } from 'vitest';
import { ComputeService } from '../../src/compute/compute-service.js';
import type { Executor } from '../../src/compute/protocols.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { networkWithTasks, queueClients } from '../helpers/queue.js';
import { startTestServer } from '../helpers/server.js';

const traceback =
  'Traceback (most recent call last):\n  File "simulate.py", line 3, in <module>\nValueError: bad box';

const protocols = new Map<string, Executor>([
  [
    'plain',
    async () => {
      throw new Error('the box is too small');
    },
  ],
  [
    'typed',
    async () => {
      throw new RangeError('tolerance must be positive');
    },
  ],
  [
    'python',
    async () => {
      throw Object.assign(new Error('simulate.py exited with 1'), { traceback });
    },
  ],
]);

describeEachBackend('failure text', (backend) => {
  const dir = tempDir();

  it("carries the executor's message and traceback, not the compute service's stack or paths", async () => {
    const server = await startTestServer(backend, dir);
    const { user, computeCredentials } = await queueClients(server);
    const plain = await networkWithTasks(user, { name: 'plain', protocol: 'plain' });
    const python = await networkWithTasks(user, { name: 'python', protocol: 'python' });
    const typed = await networkWithTasks(user, { name: 'typed', protocol: 'typed' });
    const service = new ComputeService({ ...computeCredentials, protocols, claimWaitMs: 200 });
    const running = service.start();
    try {
      for (let i = 0; i < 100; i++) {
        const counts = (await user.scopeStatus())['org-camp-p'] ?? {};
        if ((counts.error ?? 0) === 3) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await service.stop();
      await running;
    }
    const plainTask = await user.getTask(plain.tasks[0]!);
    const pythonTask = await user.getTask(python.tasks[0]!);
    expect(plainTask.lastError).toBe('the box is too small');
    expect(pythonTask.lastError).toBe(`simulate.py exited with 1\n${traceback}`);
    // The class of a typed error stays with its message, so failures can be grouped by it.
    expect((await user.getTask(typed.tasks[0]!)).lastError).toBe('RangeError: tolerance must be positive');
    const [result] = await user.taskResults(plain.tasks[0]!);
    expect(result!.error).toBe('the box is too small');
    for (const text of [plainTask.lastError, pythonTask.lastError]) {
      expect(text).not.toMatch(/\n\s+at |compute-service|\/src\//);
    }
  });
});
