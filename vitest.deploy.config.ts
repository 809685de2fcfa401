import { defineConfig } from 'vitest/config';

// The deployment tests (npm run test:deploy): they build the container image, run it with
// podman, and render and check the compose file, the Kubernetes manifests and the systemd units.
// Apart from `npm test`, which stays quick; .ci/run runs both.
export default defineConfig({
  test: {
    include: ['test/deploy/**/*.test.ts'],
    globalSetup: ['test/deploy/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // One file at a time: the image tests already keep both cores busy.
    maxWorkers: 1,
    reporters: ['default'],
  },
});
