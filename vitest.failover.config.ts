import { defineConfig } from "vitest/config";

// The failover suite (`npm run test:failover`): real fleets (Redis, three nodes, HAProxy) under
// load, one failure after another. Files run one at a time, each starting its own fleet with its
// own redis-server, so no global Redis setup; the timeouts cover fleet start-up and scenarios.
export default defineConfig({
  test: {
    include: ["test/failover/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
