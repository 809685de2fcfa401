import type { Command } from 'commander';
import type { UserClient } from '../../client/user-client.js';
import { AthanorError } from '../../domain/errors.js';
import type { TaskStatus } from '../../domain/task-state.js';
import { integerOption, userClient } from '../context.js';
import { note } from '../output.js';
import { progressText } from '../queue-output.js';

/** How often `--follow` asks the server what changed. */
const followPollMs = 1000;
/** After an attempt ends, how long `--follow` waits for its compute service to upload the log. */
const logGraceMs = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function printLog(client: UserClient, task: string, attempt: number): Promise<void> {
  const stream = await client.attemptLog(task, attempt);
  for await (const chunk of stream) process.stdout.write(chunk as Buffer);
}

/** Statuses after which no new attempt comes unless a user restarts the task. */
const settled: ReadonlySet<TaskStatus> = new Set(['complete', 'error', 'invalid', 'deleted']);

/**
 * Follows a task: prints each attempt's log once the attempt ended and its log arrived, and the
 * running attempt's progress on stderr as it changes; without `only`, starts at the latest
 * attempt and goes on with the next ones until the task settles.
 */
async function follow(client: UserClient, task: string, only: number | undefined): Promise<void> {
  let next = only;
  let shownProgress = '';
  let endedSeenAt: number | undefined;
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
      continue;
    }
    endedSeenAt ??= Date.now();
    if (attempt.logSizeBytes === null && Date.now() - endedSeenAt < logGraceMs) continue;
    note(`[attempt ${attempt.attempt}] ${attempt.outcome ?? 'ended'} at ${attempt.endedAt}`);
    if (attempt.logSizeBytes === null) note(`[attempt ${attempt.attempt}] no log was uploaded`);
    else await printLog(client, task, attempt.attempt);
    if (only !== undefined || (settled.has(current.status) && attempts.length <= attempt.attempt)) return;
    next = attempt.attempt + 1;
    endedSeenAt = undefined;
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
    .option('-f, --follow', 'wait for running attempts to end and print their logs, with progress on stderr')
    .description("an attempt's log: the executor's log lines and the stdout/stderr of exec tasks")
    .action(async (taskId: string, options: { attempt?: number; follow?: boolean }, cmd: Command) => {
      const client = userClient(cmd);
      if (options.follow) return follow(client, taskId, options.attempt);
      const attempts = await client.taskAttempts(taskId);
      const last = attempts.at(-1);
      if (!last) throw new AthanorError('not_found', `task '${taskId}' was never claimed: it has no log yet`);
      await printLog(client, taskId, options.attempt ?? last.attempt);
    });
}
