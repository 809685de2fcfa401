import { expect, it } from 'vitest';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

describeEachBackend('backup metrics', (backend) => {
  const dir = tempDir();

  it(
    'reflect a backup and a verification taken by hand, on a server that schedules none',
    { timeout: 90_000 },
    async () => {
      const server = await startTestServer(backend, dir);
      const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
      // Nothing at the target yet: 0, which an "older than" alert catches.
      expect(gauge(await scrape(), 'athanor_backup_last_success_timestamp_seconds')).toBe(0);

      const env = { ATHANOR_DATABASE_URL: server.databaseUrl, ATHANOR_DATA_DIR: server.config.dataDir };
      const before = Date.now() / 1000 - 5;
      const created = await runCli(['backup', 'create'], { env });
      expect(created.code, created.stderr).toBe(0);
      const verified = await runCli(['backup', 'verify', 'latest'], { env });
      expect(verified.code, verified.stderr).toBe(0);
      expect((await runCli(['backup', 'status', '--verified'], { env })).code).toBe(0);

      const text = await until(
        'the expected state',
        async () => {
          const body = await scrape();
          return gauge(body, 'athanor_backup_last_verified_timestamp_seconds') > 0 ? body : undefined;
        },
        30_000,
      );
      expect(gauge(text, 'athanor_backup_last_success_timestamp_seconds')).toBeGreaterThan(before);
      expect(gauge(text, 'athanor_backup_last_verified_timestamp_seconds')).toBeGreaterThan(before);
      expect(gauge(text, 'athanor_backup_size_bytes')).toBeGreaterThan(0);
    },
  );
});
