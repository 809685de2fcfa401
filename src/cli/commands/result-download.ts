import { Command, Option } from 'commander';
import { defaultResultCacheDir } from '../../client/download-results.js';
import { AthanorError } from '../../domain/errors.js';
import { resultOutcomes } from '../../domain/outcomes.js';
import type { ResultOutcome } from '../../domain/outcomes.js';
import { integerOption, userClient, wantsJson } from '../context.js';
import { note, printJson } from '../output.js';
import { progressBar } from '../progress-bar.js';

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** `result download --network <key> <dir>`: every result of a network into a folder. */
export function resultDownloadCommand(): Command {
  return new Command('download')
    .argument('<dir>', 'the folder: one file per transformation (named by its key) and index.json')
    .requiredOption('--network <network>', 'the network whose results to download')
    .addOption(new Option('--outcome <outcome>', 'which results').choices(resultOutcomes).default('ok'))
    .option('-c, --concurrency <n>', 'downloads at once', integerOption('--concurrency'), 4)
    .option('--cache-dir <dir>', `the local result cache (default ${defaultResultCacheDir()})`)
    .option('--no-cache', 'use no local cache')
    .option(
      '--cache-max-bytes <n>',
      'the cache size cap; least recently used entries go first (default 1 GiB)',
      integerOption('--cache-max-bytes'),
    )
    .description(
      'download every result of a network, in parallel; run again to resume: files already right are kept',
    )
    .action(
      async (
        dir: string,
        options: {
          network: string;
          outcome: ResultOutcome;
          concurrency: number;
          cacheDir?: string;
          cache: boolean;
          cacheMaxBytes?: number;
        },
        cmd: Command,
      ) => {
        if (options.concurrency < 1) {
          throw new AthanorError('invalid_argument', '--concurrency takes a whole number ≥ 1');
        }
        const bar = progressBar('download');
        const summary = await userClient(cmd)
          .downloadNetworkResults(options.network, dir, {
            outcome: options.outcome,
            concurrency: options.concurrency,
            cacheDir: options.cache ? options.cacheDir : false,
            ...(options.cacheMaxBytes === undefined ? {} : { cacheMaxBytes: options.cacheMaxBytes }),
            onProgress: (p) => bar.update(p.done, p.total, mib(p.bytesDownloaded)),
          })
          .finally(() => bar.stop());
        // The cache is the user's, shared by every folder, network and server: a result whose
        // bytes any earlier download fetched (the same example network on another installation,
        // say) is copied from it. Say which cache, so a first download into a folder is not a puzzle.
        const cache =
          summary.fromCache > 0 ? ` (the local cache ${options.cacheDir ?? defaultResultCacheDir()})` : '';
        if (wantsJson(cmd)) printJson(summary);
        else
          note(
            `${summary.total} result(s) in ${dir}: ${summary.downloaded} downloaded (${mib(summary.bytesDownloaded)}), ` +
              `${summary.fromCache} from the cache${cache}, ${summary.present} already there`,
          );
      },
    );
}
