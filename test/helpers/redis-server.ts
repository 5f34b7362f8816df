// Real redis-server processes for tests (never a mock), started by the same code as a local
// fleet's (src/topology/redis.ts): memory only unless `persistence`, an ACL file when given.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/topology/ports.js";
import { startPrivateRedis } from "../../src/topology/redis.js";

export { freePort };

export const REDIS_INSTALL_HINT = "sudo apt-get update && sudo apt-get install -y redis-server";

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL). With persistence on, data is saved first. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory (for restart tests). */
  restart(): Promise<void>;
}

export function assertRedisInstalled(): void {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error(
      `redis-server is not installed or not on PATH. Install it with:\n  ${REDIS_INSTALL_HINT}`,
    );
  }
}

export interface RedisOptions {
  /** Turn on AOF persistence (appendfsync always) so restarts keep every acknowledged write. */
  persistence?: boolean;
  port?: number;
  /** An ACL file to load (`--aclfile`), e.g. the output of ops/redis-acl.sh. */
  aclFile?: string;
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  assertRedisInstalled();
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "launcher-redis-"));
  const redis = await startPrivateRedis({
    dir,
    port,
    persistence: opts.persistence ?? false,
    ...(opts.aclFile ? { aclFile: opts.aclFile } : {}),
  });
  return { port, url: redis.url, dir, stop: () => redis.stop(), restart: () => redis.restart() };
}

export function removeRedisDir(server: RedisServer): void {
  rmSync(server.dir, { recursive: true, force: true });
}
