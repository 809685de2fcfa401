import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TaskStatus } from '../../src/domain/task-state.js';
import {
  canTransition,
  taskStatuses,
  terminalStatuses,
  userSettableStatuses,
} from '../../src/domain/task-state.js';

const status = fc.constantFrom(...taskStatuses);
const userStatus = fc.constantFrom(...userSettableStatuses);

describe('task state machine', () => {
  it('never leaves a terminal status, whoever asks', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('invalid', 'deleted') as fc.Arbitrary<TaskStatus>,
        status,
        fc.constantFrom('user', 'system') as fc.Arbitrary<'user' | 'system'>,
        (from, to, actor) => {
          expect(canTransition(from, to, actor)).toBe(from === to && actor === 'user');
        },
      ),
    );
  });

  it('lets users set only waiting, invalid and deleted, and never complete or running', () => {
    fc.assert(
      fc.property(status, status, (from, to) => {
        if (canTransition(from, to, 'user') && from !== to) {
          expect((userSettableStatuses as readonly string[]).includes(to)).toBe(true);
        }
      }),
    );
  });

  it('reaches running only by a system claim from waiting, and complete only from running', () => {
    fc.assert(
      fc.property(
        status,
        fc.constantFrom('user', 'system') as fc.Arbitrary<'user' | 'system'>,
        (from, actor) => {
          if (canTransition(from, 'running', actor) && from !== 'running')
            expect([from, actor]).toEqual(['waiting', 'system']);
          if (canTransition(from, 'complete', actor) && from !== 'complete')
            expect([from, actor]).toEqual(['running', 'system']);
        },
      ),
    );
  });

  it('any sequence of user and system steps keeps a task in a reachable, consistent status', () => {
    const step = fc.oneof(
      userStatus.map((to) => ({ actor: 'user' as const, to: to as TaskStatus })),
      status.map((to) => ({ actor: 'system' as const, to })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let current: TaskStatus = 'waiting';
        let everTerminal = false;
        for (const { actor, to } of steps) {
          if (canTransition(current, to, actor)) current = to;
          if (terminalStatuses.has(current)) everTerminal = true;
          // Once terminal, always terminal and unchanged.
          if (everTerminal) expect(terminalStatuses.has(current)).toBe(true);
        }
      }),
    );
  });
});
