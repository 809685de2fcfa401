import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgresCluster } from './postgres-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the suite's throwaway PostgreSQL cluster; empty when PostgreSQL is missing. */
    postgresAdminUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const root = path.resolve(import.meta.dirname, '../..');
  // CLI tests run the built binary, as users do; rebuild it when a source file is newer.
  if (newestMtime(path.join(root, 'src')) > builtAt(path.join(root, 'dist/cli/main.js'))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  }
  const cluster = await startPostgresCluster();
  if ('unavailable' in cluster) {
    if (process.env.CI === 'true') {
      throw new Error(
        `PostgreSQL tests cannot run: ${cluster.unavailable}. CI must run them: install PostgreSQL.`,
      );
    }
    const banner = '!'.repeat(78);
    process.stderr.write(
      `\n${banner}\n!! SKIPPING every PostgreSQL test: ${cluster.unavailable}.\n` +
        `!! Install PostgreSQL (initdb, pg_ctl) to run them; under CI=true this is a failure.\n${banner}\n\n`,
    );
    project.provide('postgresAdminUrl', '');
    return () => {};
  }
  project.provide('postgresAdminUrl', cluster.url);
  return () => cluster.stop();
}

function builtAt(file: string): number {
  return existsSync(file) ? statSync(file).mtimeMs : 0;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}
