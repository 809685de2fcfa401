import { plainOutputRequested } from '../config/environment.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LogController } from 'fastify';
import type { DestinationStream } from 'pino';

const levelNames: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

const levelColors: Readonly<Record<number, string>> = { 40: '33', 50: '31', 60: '31' };

/** Fields every pino line carries that a person reading a terminal does not need. */
const hiddenFields: ReadonlySet<string> = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);

/** One pino JSON line as `12:04:05 INFO message key=value …`; a line that is not JSON passes as is. */
export function formatLogLine(line: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const time = new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toISOString().slice(11, 19);
  let name = (levelNames[level] ?? String(level)).padEnd(5);
  const code = levelColors[level];
  if (color && code) name = `\u001b[${code}m${name}\u001b[39m`;
  const fields = Object.entries(entry)
    .filter(([key]) => !hiddenFields.has(key))
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  const message = typeof entry.msg === 'string' ? entry.msg : '';
  return `${time} ${name} ${[message, ...fields].filter(Boolean).join(' ')}\n`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value !== null && typeof value === 'object') {
    const error = value as { message?: unknown; type?: unknown };
    if (typeof error.message === 'string' && typeof error.type === 'string')
      return JSON.stringify(error.message);
    return JSON.stringify(value);
  }
  return String(value);
}

/**
 * A pino destination that writes human-readable lines to a terminal (colour unless `NO_COLOR`);
 * not on a terminal, logs stay JSON lines for collectors.
 */
export function humanLogStream(out: NodeJS.WriteStream = process.stdout): DestinationStream {
  const color = out.isTTY === true && !plainOutputRequested();
  return {
    write(line: string) {
      out.write(formatLogLine(line, color));
    },
  };
}

/**
 * Per-request log lines at debug: at info they would bury everything else (a long-poll claim
 * every few seconds). A 5xx other than 503 is logged as an error, a 503 as a warning.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const status = reply.statusCode;
    const level = status >= 500 ? (status === 503 ? 'warn' : 'error') : 'debug';
    const fields = { method: request.method, url: request.url, status, ms: Math.round(reply.elapsedTime) };
    if (error) reply.log[level]({ ...fields, err: error }, 'request failed');
    else reply.log[level](fields, 'request');
  }
}
