import { defineConfig } from 'vitest/config';

// Two projects: pure logic (fast, no kernel) and integration tests against
// the real kernel, overlayfs, PostgreSQL and Vitest. CI runs the second one
// again as an unprivileged user.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: ['test/integration/global-setup.ts'],
        },
      },
    ],
  },
});
