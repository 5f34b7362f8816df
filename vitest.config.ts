import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/failover/**", "node_modules/**"],
    globalSetup: ["test/helpers/redis-global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real processes and servers; two cores are all we have.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
