// Benchmark worker processes (bench/worker.js), one per claimer: started together, each prints
// "ready", all start on "go" and each answers one JSON line when it is done.
import { spawn } from 'node:child_process';
import path from 'node:path';

/** Starts `count` worker processes, waits until all are ready and returns handles to them. */
export async function startWorkers(count, options) {
  const workers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [path.join(import.meta.dirname, 'worker.js'), JSON.stringify(options)],
            { stdio: ['pipe', 'pipe', 'inherit'] },
          );
          let out = '';
          const done = new Promise((res, rej) => {
            child.on('close', (code) =>
              code === 0
                ? res(JSON.parse(out.split('\n').filter(Boolean).at(-1)))
                : rej(new Error(`worker exited with ${code}`)),
            );
          });
          child.on('error', reject);
          child.stdout.on('data', (chunk) => {
            out += chunk;
            if (out.startsWith('ready\n') && !child.ready) {
              child.ready = true;
              out = out.slice('ready\n'.length);
              resolve({ child, done });
            }
          });
          child.once('close', () => child.ready || reject(new Error('worker exited before it was ready')));
        }),
    ),
  );
  return {
    send: (line) => workers.forEach((w) => w.child.stdin.write(`${line}\n`)),
    results: () => Promise.all(workers.map((w) => w.done)),
  };
}
