import { Command } from 'commander';
import { collect, integerOption, userClient, wantsJson } from '../context.js';
import { printJson, printLine, printTable } from '../output.js';

export function webhookCommand(): Command {
  // Here `--url` is the endpoint's; the server's URL is `--server` (or ATHANOR_URL).
  const command = new Command('webhook').description('signed HTTP deliveries of events (user API)');
  command
    .command('add')
    .description('add an endpoint; prints its signing secret once (keep it: it verifies deliveries)')
    .requiredOption('--url <url>', 'http(s) URL the events are POSTed to')
    .requiredOption('-s, --scope <scope>', 'deliver events of this scope (wildcards allowed, within yours)')
    .option('-e, --event <type>', 'deliver only this event type (repeatable; default every type)', collect)
    .action(async (options: { url: string; scope: string; event?: string[] }, cmd: Command) => {
      const created = await userClient(cmd.parent ?? cmd).addWebhook({
        url: options.url,
        scope: options.scope,
        ...(options.event ? { events: options.event } : {}),
      });
      if (wantsJson(cmd)) return printJson(created);
      printLine(`id      ${created.id}`);
      printLine(`secret  ${created.secret}`);
      process.stderr.write(
        'the secret is shown this once: verify deliveries with it (Standard Webhooks signatures)\n',
      );
    });
  command
    .command('list')
    .description('endpoints in your scopes')
    .action(async (_options: unknown, cmd: Command) => {
      const hooks = await userClient(cmd).listWebhooks();
      if (wantsJson(cmd)) return printJson(hooks);
      printTable(hooks, [
        { header: 'ID', value: (h) => h.id },
        { header: 'STATE', value: (h) => h.state },
        { header: 'SCOPE', value: (h) => h.scope },
        { header: 'EVENTS', value: (h) => (h.events.length ? h.events.join(',') : 'all') },
        { header: 'DELIVERED', value: (h) => String(h.deliveredUpTo) },
        { header: 'FAILURES', value: (h) => String(h.failures) },
        { header: 'URL', value: (h) => h.url },
      ]);
    });
  command
    .command('show')
    .argument('<id>')
    .description('an endpoint and its delivery log')
    .option(
      '-n, --deliveries <n>',
      'newest deliveries to show',
      integerOption('--deliveries', { min: 1 }),
      20,
    )
    .action(async (id: string, options: { deliveries: number }, cmd: Command) => {
      const hook = await userClient(cmd).getWebhook(id, options.deliveries);
      if (wantsJson(cmd)) return printJson(hook);
      printLine(`${hook.id}  ${hook.state}  ${hook.scope}  ${hook.url}`);
      if (hook.disabledReason) printLine(`disabled: ${hook.disabledReason}`);
      printTable(hook.deliveries, [
        { header: 'AT', value: (d) => d.at },
        { header: 'EVENT', value: (d) => (d.event === null ? '-' : String(d.event)) },
        { header: 'TYPE', value: (d) => d.type },
        { header: 'ATTEMPT', value: (d) => String(d.attempt) },
        { header: 'OUTCOME', value: (d) => d.outcome },
        { header: 'STATUS', value: (d) => (d.statusCode === null ? '-' : String(d.statusCode)) },
        { header: 'MS', value: (d) => String(d.durationMs) },
        { header: 'ERROR', value: (d) => d.error ?? '' },
      ]);
    });
  command
    .command('remove')
    .argument('<id>')
    .description('remove an endpoint (its delivery log goes with it)')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const removed = await userClient(cmd).removeWebhook(id);
      if (wantsJson(cmd)) printJson(removed);
      else printLine(`removed ${id}`);
    });
  command
    .command('test')
    .argument('<id>')
    .description('send a signed webhook.test message now; exits 1 when the receiver does not answer 2xx')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const answer = await userClient(cmd).testWebhook(id);
      if (wantsJson(cmd)) printJson(answer);
      else
        printLine(
          answer.ok
            ? `delivered: HTTP ${answer.statusCode} in ${answer.durationMs} ms`
            : `failed: ${answer.error}`,
        );
      if (!answer.ok) process.exitCode = 1;
    });
  command
    .command('enable')
    .argument('<id>')
    .description('turn a disabled endpoint back on; delivery resumes where it stopped')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const hook = await userClient(cmd).enableWebhook(id);
      if (wantsJson(cmd)) printJson(hook);
      else printLine(`${id} is ${hook.state}`);
    });
  return command;
}
