import type { Command } from 'commander';
import type { UserClient } from '../../client/user-client.js';
import { AthanorError, isAthanorError } from '../../domain/errors.js';
import type { TaskStatus } from '../../domain/task-state.js';
import { integerOption, userClient } from '../context.js';
import { note } from '../output.js';
import { progressText } from '../queue-output.js';

/** How often `--follow` asks the server what changed. */
const followPollMs = 1000;
/** After an attempt ends, how long `--follow` waits for its compute service to upload the log. */
const logGraceMs = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Prints an attempt's log from byte `offset` on; answers how many bytes it printed and whether
 * that was the end of the whole log (the uploaded one) rather than what a running attempt sent.
 */
async function printLog(
  client: UserClient,
  task: string,
  attempt: number,
  offset = 0,
): Promise<{ bytes: number; complete: boolean; running: boolean }> {
  const log = await client.readAttemptLog(task, attempt, offset);
  let bytes = 0;
  for await (const chunk of log.stream) {
    bytes += (chunk as Buffer).length;
    process.stdout.write(chunk as Buffer);
  }
  return { bytes, complete: log.complete, running: log.running };
}

/** Statuses after which no new attempt comes unless a user restarts the task. */
const settled: ReadonlySet<TaskStatus> = new Set(['complete', 'error', 'invalid', 'deleted']);

/**
 * Follows a task: prints the running attempt's log lines as its compute service sends them (on
 * its heartbeats) and its progress on stderr as it changes; once the attempt ended, the rest of
 * its uploaded log. Every byte is printed once: each read starts where the last one stopped, and
 * the uploaded log starts with what was sent while it ran. Without `only`, starts at the latest
 * attempt and goes on with the next ones until the task settles.
 */
async function follow(client: UserClient, task: string, only: number | undefined): Promise<void> {
  let next = only;
  let printed = 0;
  let shownProgress = '';
  for (; ; await sleep(followPollMs)) {
    const [attempts, current] = await Promise.all([client.taskAttempts(task), client.getTask(task)]);
    next ??= attempts.at(-1)?.attempt;
    const attempt = attempts.find((a) => a.attempt === next);
    if (!attempt) {
      if (!settled.has(current.status)) continue;
      if (only === undefined && next !== undefined) return;
      throw new AthanorError(
        'not_found',
        `task '${task}' is ${current.status} and has no attempt ${next ?? 1}: there is no log to follow`,
      );
    }
    if (attempt.endedAt === null) {
      const text = current.progress ? progressText(current.progress) : '';
      if (text !== '' && text !== shownProgress) note(`[attempt ${attempt.attempt}] progress ${text}`);
      shownProgress = text;
      printed += (await printLog(client, task, attempt.attempt, printed)).bytes;
      continue;
    }
    // Its log follows the result: wait for it a while after the attempt ended (not after this
    // command first saw it end, so an old attempt that logged nothing answers at once).
    if (attempt.logSizeBytes === null && Date.now() < Date.parse(attempt.endedAt) + logGraceMs) continue;
    note(`[attempt ${attempt.attempt}] ${attempt.outcome ?? 'ended'} at ${attempt.endedAt}`);
    const rest = await printLog(client, task, attempt.attempt, printed).catch((error: unknown) => {
      if (isAthanorError(error) && error.code === 'not_found') return undefined;
      throw error;
    });
    if (!rest?.complete) {
      note(
        `[attempt ${attempt.attempt}] no log was uploaded` +
          (printed + (rest?.bytes ?? 0) > 0 ? ': above is what it sent while it ran' : ''),
      );
    }
    if (only !== undefined || (settled.has(current.status) && attempts.length <= attempt.attempt)) return;
    next = attempt.attempt + 1;
    printed = 0;
    shownProgress = '';
  }
}

/** `task logs`: what an attempt's executor logged and its program printed. */
export function addTaskLogsCommand(task: Command): void {
  task
    .command('logs')
    .argument('<task>')
    .option(
      '--attempt <n>',
      'which attempt (1 for the first; default the latest)',
      integerOption('--attempt', { min: 1 }),
    )
    .option(
      '-f, --follow',
      "print a running attempt's log lines as they arrive (and its progress on stderr) until it ends",
    )
    .description("an attempt's log: the executor's log lines and the stdout/stderr of exec tasks")
    .action(async (taskId: string, options: { attempt?: number; follow?: boolean }, cmd: Command) => {
      const client = userClient(cmd);
      if (options.follow) return follow(client, taskId, options.attempt);
      const attempts = await client.taskAttempts(taskId);
      const last = attempts.at(-1);
      if (!last) throw new AthanorError('not_found', `task '${taskId}' was never claimed: it has no log yet`);
      const number = options.attempt ?? last.attempt;
      const shown = await printLog(client, taskId, number);
      if (!shown.complete) {
        note(
          shown.running
            ? `[attempt ${number}] still running: this is its log so far (--follow keeps printing it)`
            : `[attempt ${number}] ended without uploading its log: this is what it sent while it ran`,
        );
      }
    });
}
