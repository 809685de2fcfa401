import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The nginx binary, or undefined when this machine has none (`apt-get install nginx`). */
export function nginxBinary(): string | undefined {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

export interface TestNginx {
  readonly url: string;
  readonly upstreamFile: string;
  /** `nginx -t` and `nginx -s reload` for this instance, as `deploy` runs them. */
  readonly testCommand: string;
  readonly reloadCommand: string;
  stop(): Promise<void>;
}

/**
 * Starts nginx on loopback with everything (config, pid, logs, temp files) under `prefix`, in
 * front of the `athanor` upstream that `upstreamFile` defines (it must exist before the start).
 */
export async function startNginx(binary: string, prefix: string, port: number): Promise<TestNginx> {
  for (const sub of ['logs', 'temp']) mkdirSync(path.join(prefix, sub), { recursive: true });
  const upstreamFile = path.join(prefix, 'athanor-upstream.conf');
  const config = path.join(prefix, 'nginx.conf');
  // As root, nginx would hand its workers to 'nobody', who cannot read a private temp dir.
  const user = process.getuid?.() === 0 ? `user ${os.userInfo().username};` : '';
  writeFileSync(
    config,
    `${user}
worker_processes 2;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/temp/body;
  proxy_temp_path ${prefix}/temp/proxy;
  fastcgi_temp_path ${prefix}/temp/fastcgi;
  uwsgi_temp_path ${prefix}/temp/uwsgi;
  scgi_temp_path ${prefix}/temp/scgi;
  include ${upstreamFile};
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://athanor;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 120s;
    }
  }
}
`,
  );
  const args = ['-p', prefix, '-c', config];
  const child: ChildProcess = spawn(binary, [...args, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await fetch(`${url}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const quoted = args.map((a) => `'${a}'`).join(' ');
  return {
    url,
    upstreamFile,
    testCommand: `${binary} -q -t ${quoted}`,
    reloadCommand: `${binary} ${quoted} -s reload`,
    async stop() {
      if (child.exitCode !== null) return;
      // SIGQUIT is nginx's graceful stop; it needs no pid file (the prefix may be gone already).
      child.kill('SIGQUIT');
      const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(forced);
    },
  };
}
