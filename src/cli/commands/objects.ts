import { Command } from 'commander';
import { formatDuration, parseDuration } from '../../domain/parse-duration.js';
import { osActor } from '../../service/audit.js';
import { wantsJson, withStore } from '../context.js';
import { note, printJson, printLine } from '../output.js';

export function objectsCommand(): Command {
  const command = new Command('objects').description(
    'the object store of result blobs (ATHANOR_OBJECTS_URL)',
  );
  command
    .command('gc')
    .description(
      'remove result blobs no result references, and partial uploads, older than a grace period ' +
        '(a result whose lease ran out while uploading leaves its blob behind)',
    )
    .option('--grace <duration>', 'keep anything younger than this (default 24h)', '24h')
    .option('--dry-run', 'report what would be removed, remove nothing')
    .action(async (options: { grace: string; dryRun?: boolean }, cmd: Command) => {
      const graceMs = parseDuration(options.grace, '--grace');
      const [{ openObjectStore }, { collectGarbage }] = await Promise.all([
        import('../../objects/open-object-store.js'),
        import('../../ops/objects-gc.js'),
      ]);
      const result = await withStore(cmd, (store, config) =>
        collectGarbage({
          store,
          objects: openObjectStore(config.objectsUrl),
          graceMs,
          // Off only where point-in-time recovery is switched off.
          pitrWindowMs: config.pitr === false ? 0 : config.pitrWindowHours * 3_600_000,
          dryRun: options.dryRun === true,
          actor: osActor(),
        }),
      );
      if (wantsJson(cmd)) {
        printJson(result);
        return;
      }
      const verb = result.dryRun ? 'would remove' : 'removed';
      printLine(
        `${verb} ${result.removed.length} unreferenced blobs and ${result.partials.length} partial uploads ` +
          `(${result.removedBytes} bytes) of ${result.blobs} blobs; kept everything younger than ${formatDuration(graceMs)}` +
          ' (and than the point-in-time window, ATHANOR_PITR_WINDOW_HOURS)',
      );
      if (result.dryRun) for (const key of [...result.removed, ...result.partials]) note(key);
    });
  return command;
}
