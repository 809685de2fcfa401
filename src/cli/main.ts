#!/usr/bin/env node
import { stopWhenNpmParentExits } from './parent-watch.js';
import { runCli } from './program.js';

// A reader that stops early (`athanor backup list | head`) closes the pipe: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

stopWhenNpmParentExits();
const code = await runCli(process.argv.slice(2));
process.exitCode = code;
