// The listeners of the events bench, in a process of their own (as receivers are elsewhere):
// `count` webhook receivers on loopback and one SSE client. Prints "ready <json ports>", then on
// "stop" one JSON line: per receiver the arrival delay of each task.complete event (receipt time
// minus the event's time), and how many events the SSE client read.
import http from 'node:http';

const { count, url, token } = JSON.parse(process.argv[2]);
const delays = [];
let sseEvents = 0;
const servers = await Promise.all(
  Array.from(
    { length: count },
    () =>
      new Promise((resolve) => {
        const server = http.createServer((request, response) => {
          let body = '';
          request.setEncoding('utf8');
          request.on('data', (c) => (body += c));
          request.on('end', () => {
            const message = JSON.parse(body);
            if (message.type === 'task.complete') delays.push(Date.now() - Date.parse(message.data.at));
            response.writeHead(204).end();
          });
        });
        server.listen(0, '127.0.0.1', () => resolve(server));
      }),
  ),
);
const sse = http.get(
  `${url}/v1/events`,
  { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } },
  (response) => {
    response.setEncoding('utf8');
    response.on(
      'data',
      (chunk) => (sseEvents += chunk.split('\n\nid: ').length - 1 + (chunk.startsWith('id: ') ? 1 : 0)),
    );
  },
);
sse.on('error', () => {});
process.stdout.write(`ready ${JSON.stringify(servers.map((s) => s.address().port))}\n`);
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line) => {
  if (!line.includes('stop')) return;
  sse.destroy();
  for (const s of servers) s.close();
  process.stdout.write(`${JSON.stringify({ delays, sseEvents })}\n`);
  process.exit(0);
});
