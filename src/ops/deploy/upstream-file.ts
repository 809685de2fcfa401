import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AthanorError } from '../../domain/errors.js';
import type { Colour } from './deploy-settings.js';
import { colours } from './deploy-settings.js';

/** The upstream name nginx's `proxy_pass http://athanor;` refers to. */
export const upstreamName = 'athanor';

const liveMarker = /^# athanor-live: (\S+)$/m;

/** The upstream block for one colour; the marker line lets `deploy status` read it back. */
export function renderUpstream(colour: Colour, url: string): string {
  const address = new URL(url).host;
  return [
    `# Written by 'athanor deploy switch'. Edit with 'athanor deploy switch <colour>', not by hand.`,
    `# athanor-live: ${colour}`,
    `upstream ${upstreamName} {`,
    `    server ${address};`,
    `    keepalive 32;`,
    `}`,
    '',
  ].join('\n');
}

/** The file's text, or undefined when there is none yet (first switch). */
export async function readUpstream(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AthanorError('deploy_proxy_failed', `cannot read ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Which colour an upstream file sends traffic to; undefined when none was written. */
export function liveColourOf(text: string | undefined): Colour | undefined {
  const found = text === undefined ? undefined : liveMarker.exec(text)?.[1];
  return (colours as readonly string[]).includes(found ?? '') ? (found as Colour) : undefined;
}

/**
 * Replaces the file in one rename, so nginx never reads half of it; `undefined` removes it
 * (undoing a first switch). Written beside its target so the rename stays on one file system.
 */
export async function writeUpstreamAtomically(file: string, text: string | undefined): Promise<void> {
  if (text === undefined) {
    await rm(file, { force: true });
    return;
  }
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    const handle = await open(temporary, 'w', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new AthanorError('deploy_proxy_failed', `cannot write ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
