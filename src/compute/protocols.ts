import { execFile } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { AthanorError } from '../domain/errors.js';

/** What an executor gets: the transformation's inputs and, for an extending task, the previous result. */
export interface ExecutionContext {
  readonly task: string;
  readonly transformation: { readonly key: string; readonly name: string; readonly protocol: string };
  /** The bytes of the extended task's result, when this task extends one. */
  readonly previousResult: (() => Promise<Readable>) | undefined;
  readonly signal: AbortSignal;
}

/**
 * An executor runs one task. It returns the result (a Buffer, a string, a stream, or any JSON
 * value, which is stored as JSON) or throws; the error's message becomes the failure text,
 * followed by its `traceback` when the executor sets one (a string, e.g. a Python traceback).
 * The compute service's own stack frames and file paths are never part of it.
 */
export type Executor = (inputs: unknown, context: ExecutionContext) => Promise<unknown>;

const echo: Executor = async (inputs) => inputs;

/** `{seconds, fail?}`: waits, then returns `{slept}` or fails with the `fail` text. For tests and demos. */
const sleepProtocol: Executor = async (inputs, context) => {
  const { seconds = 1, fail } = (inputs ?? {}) as { seconds?: number; fail?: string };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, Math.max(0, Number(seconds)) * 1000);
    context.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('interrupted'));
    });
  });
  if (fail) throw new Error(String(fail));
  return { slept: seconds };
};

/** `{command: [file, ...args]}`: runs a command without a shell; stdout is the result. */
const exec: Executor = async (inputs, context) => {
  const { command } = (inputs ?? {}) as { command?: unknown };
  if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string')) {
    throw new Error('exec inputs must be {"command": ["program", "arg", ...]}');
  }
  const [file, ...args] = command as string[];
  return new Promise<Buffer>((resolve, reject) => {
    execFile(
      file as string,
      args,
      { signal: context.signal, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr.toString('utf8')}`));
        else resolve(stdout);
      },
    );
  });
};

/**
 * The failure text users see for an executor's error: its message, named by its class unless that
 * is plain `Error` (`RangeError: …`), then its traceback if any. Never the JavaScript stack: its
 * frames are the compute host's paths, not the scientist's code.
 */
export function failureText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const message = error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  const traceback = (error as Error & { traceback?: unknown }).traceback;
  return typeof traceback === 'string' && traceback !== '' ? `${message}\n${traceback}` : message;
}

export const builtinProtocols: Readonly<Record<string, Executor>> = { echo, sleep: sleepProtocol };

export interface ProtocolOptions {
  /** Allow the `exec` protocol, which runs commands named by transformations; default false. */
  readonly allowExec?: boolean;
  /** Plug-in modules exporting executors by protocol name. */
  readonly pluginFiles?: readonly string[];
}

/** The executors a compute service offers: the built-in ones, `exec` when allowed, and plug-ins. */
export async function loadProtocols(options: ProtocolOptions = {}): Promise<Map<string, Executor>> {
  const protocols = new Map<string, Executor>(Object.entries(builtinProtocols));
  if (options.allowExec) protocols.set('exec', exec);
  for (const file of options.pluginFiles ?? []) {
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
    } catch (cause) {
      throw new AthanorError(
        'invalid_argument',
        `cannot load protocols from ${file}: ${(cause as Error).message}`,
        { cause },
      );
    }
    const exported = (
      module.default && typeof module.default === 'object' ? module.default : module
    ) as Record<string, unknown>;
    const found = Object.entries(exported).filter(([, value]) => typeof value === 'function');
    if (found.length === 0) {
      throw new AthanorError(
        'invalid_argument',
        `${file} exports no protocol handlers (export async functions by protocol name)`,
      );
    }
    for (const [name, handler] of found) protocols.set(name, handler as Executor);
  }
  return protocols;
}
