import type { Command } from 'commander';
import type { AttemptView, FailureView, TaskDetail, UserClient } from '../../client/user-client.js';
import { AthanorError } from '../../domain/errors.js';
import { userClient, wantsJson } from '../context.js';
import { printJson, printLine, printTable } from '../output.js';
import { progressText } from '../queue-output.js';

const firstLine = (text: string | null) => (text ?? '').split('\n')[0] ?? '';
const where = (a: { computeIdentity: string; hostname: string | null }) =>
  a.hostname ? `${a.computeIdentity}@${a.hostname}` : a.computeIdentity;
const detailsBatch = 10_000;

/** Every task of a network, page by page. */
async function networkTaskIds(client: UserClient, network: string): Promise<string[]> {
  const ids: string[] = [];
  for (let after: string | undefined; ;) {
    const page = await client.listTasks({ network, limit: 10_000, ...(after ? { after } : {}) });
    ids.push(...page.map((t) => t.id));
    if (page.length < 10_000) return ids;
    after = page.at(-1)?.id;
  }
}

async function detailsOf(client: UserClient, ids: readonly string[]) {
  const answers: { task: string; result: TaskDetail | null; error?: string }[] = [];
  for (let i = 0; i < ids.length; i += detailsBatch) {
    answers.push(...(await client.taskDetails(ids.slice(i, i + detailsBatch))));
  }
  return answers;
}

function printAttempts(attempts: readonly AttemptView[]): void {
  printTable(
    attempts,
    [
      { header: 'ATTEMPT', value: (a) => String(a.attempt) },
      { header: 'OUTCOME', value: (a) => a.outcome ?? 'running' },
      { header: 'WHERE', value: where },
      { header: 'SERVICE', value: (a) => a.computeService },
      { header: 'CLAIMED', value: (a) => a.claimedAt },
      { header: 'ENDED', value: (a) => a.endedAt ?? '-' },
      { header: 'RESULT / REASON', value: (a) => a.result ?? a.reason ?? '' },
    ],
    'never claimed',
  );
}

function printOne(task: string, detail: TaskDetail): void {
  printLine(`${task}  ${detail.status} since ${detail.statusChangedAt}`);
  if (detail.reason) printLine(`  reason: ${detail.reason}`);
  if (detail.leaseHolder) {
    printLine(`  running on ${where(detail.leaseHolder)} (${detail.leaseHolder.computeService})`);
  }
  if (detail.progress) printLine(`  progress: ${progressText(detail.progress)} (at ${detail.progress.at})`);
  printAttempts(detail.attempts);
  if (detail.lastErrorHead) printLine(`last error:\n${detail.lastErrorHead}`);
}

function printSummary(
  rows: readonly { task: string; result: TaskDetail | null; error?: string }[],
  emptyText: string,
): void {
  printTable(
    rows,
    [
      { header: 'TASK', value: (r) => r.task },
      { header: 'STATUS', value: (r) => r.result?.status ?? 'not found' },
      { header: 'CLAIMS', value: (r) => String(r.result?.attempts.length ?? 0) },
      { header: 'LAST OUTCOME', value: (r) => r.result?.lastOutcome ?? '-' },
      {
        header: 'WHERE',
        value: (r) => {
          const last = r.result?.attempts.at(-1);
          return last ? where(last) : '-';
        },
      },
      { header: 'LAST ERROR', value: (r) => firstLine(r.result?.lastErrorHead ?? null) },
    ],
    emptyText,
  );
}

/** `task history` and `task errors`: what happened to tasks, attempt by attempt. */
export function addTaskHistoryCommands(task: Command): void {
  task
    .command('history')
    .argument('[task...]')
    .option('--network <network>', "every task of this network's transformations")
    .option('--retried', 'only tasks claimed more than once')
    .description(
      'the attempts of tasks: where each ran, how it ended and why; with --network, one line per task',
    )
    .action(async (tasks: string[], options: { network?: string; retried?: boolean }, cmd: Command) => {
      if (tasks.length === 0 && !options.network) {
        throw new AthanorError('invalid_argument', 'name tasks or give --network <network>');
      }
      const client = userClient(cmd);
      const ids = [...tasks, ...(options.network ? await networkTaskIds(client, options.network) : [])];
      let answers = await detailsOf(client, ids);
      if (options.retried) answers = answers.filter((a) => (a.result?.attempts.length ?? 0) > 1);
      if (wantsJson(cmd)) printJson(answers);
      else if (options.network || options.retried || answers.length > 1) {
        printSummary(answers, options.retried ? 'no task was claimed more than once' : 'no tasks');
      } else {
        const [answer] = answers;
        if (answer?.result) printOne(answer.task, answer.result);
      }
      if (answers.some((a) => a.result === null)) {
        for (const a of answers.filter((x) => x.result === null))
          process.stderr.write(`athanor: no task '${a.task}' in your scopes\n`);
        process.exitCode = 1;
      }
    });

  task
    .command('errors')
    .option('--network <network>', "failures of this network's tasks")
    .option('-s, --scope <scope>', 'failures in this scope (wildcards allowed)')
    .description('every failed attempt with its error class and message (--json: the full text too)')
    .action(async (options: { network?: string; scope?: string }, cmd: Command) => {
      if (!options.network && !options.scope) {
        throw new AthanorError('invalid_argument', 'give --network <network> or --scope <scope>');
      }
      const client = userClient(cmd);
      const failures: FailureView[] = [];
      for (let after: string | undefined; ;) {
        const query = { limit: 1000, ...(after ? { after } : {}) };
        const page = options.network
          ? await client.networkFailures(options.network, query)
          : await client.failures({ ...query, ...(options.scope ? { scope: options.scope } : {}) });
        failures.push(...page);
        const last = page.at(-1);
        if (!last) break;
        after = `${last.task}:${last.attempt}`;
      }
      if (wantsJson(cmd)) printJson(failures);
      else
        printTable(
          failures,
          [
            { header: 'TASK', value: (f) => f.task },
            { header: 'ATTEMPT', value: (f) => String(f.attempt) },
            { header: 'WHERE', value: where },
            { header: 'ENDED', value: (f) => f.endedAt ?? '-' },
            { header: 'CLASS', value: (f) => f.errorClass ?? '-' },
            { header: 'MESSAGE', value: (f) => firstLine(f.message) },
          ],
          'no failures',
        );
    });
}
