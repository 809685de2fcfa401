#!/usr/bin/env node
import { stopWhenNpmParentExits } from './parent-watch.js';

// A reader that stops early (`athanor backup list | head`) closes the pipe: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  // The answer a script asks for most often needs neither the command tree nor commander.
  process.stdout.write(`${(await import('../version.js')).appVersion}\n`);
} else {
  stopWhenNpmParentExits();
  const { runCli } = await import('./program.js');
  process.exitCode = await runCli(argv);
}
