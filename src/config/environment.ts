import os from 'node:os';
import { processVariables } from './settings.js';

/**
 * The process environment, read here and in `resolveConfig` only (a test holds every other file
 * to it): what is read from it is named, so a reader finds every variable Athanor looks at.
 */
type Env = Readonly<Record<string, string | undefined>>;

/** The whole environment, for libraries that take it as one (the AWS SDK's `AWS_*` settings). */
export function processEnvironment(): Env {
  return process.env;
}

/** `ATHANOR_DEBUG=1`: print stack traces. */
export function debugRequested(env: Env = process.env): boolean {
  return env[processVariables.debug.env] === '1';
}

/** `NO_COLOR` set (to anything): no colour in terminal output. */
export function plainOutputRequested(env: Env = process.env): boolean {
  return processVariables.noColor.env in env;
}

/** Whether npm started this process (`npx athanor`, `npm start`): its variables say so. */
export function startedByNpm(env: Env = process.env): boolean {
  return env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;
}

/** The operating-system user, for the audit log's `osuser@host`; `USER` where the OS cannot say. */
export function osUserName(env: Env = process.env): string {
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? 'unknown';
  }
}
