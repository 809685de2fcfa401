import type { Readable } from 'node:stream';
import type { EventView } from '../domain/event-types.js';

/**
 * Parses a Server-Sent Events body into the events it carries (`data:` lines as JSON); comments
 * and `retry:` lines are skipped. Ends when the body ends.
 */
export async function* parseEventStream(body: Readable): AsyncGenerator<EventView> {
  let buffered = '';
  body.setEncoding('utf8');
  for await (const chunk of body) {
    buffered += chunk as string;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data !== '') yield JSON.parse(data) as EventView;
    }
  }
}
