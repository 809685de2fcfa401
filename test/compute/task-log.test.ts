import { text } from 'node:stream/consumers';
import { expect, it } from 'vitest';
import { TaskLog, truncationMarker } from '../../src/compute/task-log.js';

const withoutTimes = (log: string) => log.replace(/^\S+Z /gm, '');

it('keeps log lines and program output line by line, the unterminated rest at the end', async () => {
  const log = new TaskLog();
  log.log('started', { step: 1 });
  log.capture('stdout', 'hel');
  log.capture('stdout', 'lo\nwor');
  log.capture('stderr', 'warning\n');
  const body = await log.finish();
  expect(withoutTimes(await text(body!()))).toBe(
    'log started {"step":1}\nstdout hello\nstderr warning\nstdout wor\n',
  );
  // A retried upload reads the same bytes again.
  expect(withoutTimes(await text(body!()))).toContain('stdout hello');
  await log.dispose();
});

it('cuts a log at its cap and says how much it dropped', async () => {
  const log = new TaskLog(1024);
  for (let i = 0; i < 100; i++) log.capture('stderr', `line ${i} ${'x'.repeat(40)}\n`);
  const body = await log.finish();
  const written = await text(body!());
  expect(log.truncated).toBe(true);
  const kept = written.split('\n').filter((l) => l.includes(' stderr line '));
  expect(Buffer.byteLength(written.slice(0, written.indexOf('[athanor]')))).toBeLessThanOrEqual(1024);
  expect(kept[0]).toMatch(/stderr line 0 x+$/);
  const dropped = 100 - kept.length;
  expect(written.endsWith(truncationMarker(1024, droppedBytes(dropped)))).toBe(true);
  await log.dispose();
});

/** Bytes of the last `n` of the 100 lines above, each `<24-char time> stderr line <i> x…40\n`. */
function droppedBytes(n: number): number {
  let total = 0;
  for (let i = 100 - n; i < 100; i++)
    total += `${'0'.repeat(24)} stderr line ${i} ${'x'.repeat(40)}\n`.length;
  return total;
}

it('answers nothing to upload when nothing was logged', async () => {
  const log = new TaskLog();
  expect(await log.finish()).toBeUndefined();
  await log.dispose();
});
