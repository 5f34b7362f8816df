// Vitest global setup: one throwaway redis-server (no persistence) for the whole run.
import type { TestProject } from "vitest/node";
import { ensureBuilt } from "./build.js";
import { type RedisServer, removeRedisDir, startRedis } from "./redis-server.js";

let server: RedisServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startRedis();
  // Some tests run nodes as real child processes from dist/ (to SIGKILL them).
  ensureBuilt();
  project.provide("redisUrl", server.url);
}

export async function teardown(): Promise<void> {
  if (!server) return;
  await server.stop();
  removeRedisDir(server);
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
