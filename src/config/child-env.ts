import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * The environment of processes Athanor starts (compute services, scheduler commands): its own,
 * with `extra` on top (undefined removes a variable). The one place a child's environment is built.
 */
export function childEnvironment(
  extra: Readonly<Record<string, string | undefined>> = {},
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** The path of `command` on `PATH`, or undefined when it is not there. */
export function commandOnPath(
  command: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
) {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
