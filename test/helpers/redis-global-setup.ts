// Vitest global setup: one throwaway redis-server (no persistence) for the whole run, and one temp
// dir that holds every other temp dir of the run (TMPDIR points there for the test workers), removed
// at the end: nodes' scratch dirs and fixtures do not pile up in /tmp across runs.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureBuilt } from "./build.js";
import { type RedisServer, removeRedisDir, startRedis } from "./redis-server.js";

let server: RedisServer | undefined;
let runTmp: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Short: supervisor sockets live a few levels below it, and Unix socket paths are short.
  runTmp = mkdtempSync(join(tmpdir(), "lft-"));
  chmodSync(runTmp, 0o755); // jobs run as other users must reach dirs made for them below it
  process.env.TMPDIR = runTmp;
  server = await startRedis();
  // Some tests run nodes as real child processes from dist/ (to SIGKILL them).
  ensureBuilt();
  project.provide("redisUrl", server.url);
}

export async function teardown(): Promise<void> {
  if (server) {
    await server.stop();
    removeRedisDir(server);
  }
  // Supervisor daemons of removed state dirs notice their socket is gone and leave by themselves.
  if (runTmp) rmSync(runTmp, { recursive: true, force: true, maxRetries: 3 });
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
