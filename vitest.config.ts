import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The image, compose, Kubernetes and systemd tests: npm run test:deploy.
    exclude: [...configDefaults.exclude, 'test/deploy/**'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most files wait on processes, timers and lease expiry rather than compute: three at a time
    // keeps two cores busy (a whole run used about 1.5 cores with two; Vitest's default is one
    // fewer than the cores, so one here).
    maxWorkers: 3,
    reporters: ['default'],
  },
});
