// Per-test-file access to the shared test Redis, each file under its own key prefix.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { inject } from "vitest";

export function redisUrl(): string {
  return inject("redisUrl");
}

/** A key prefix no other test file uses, so files can share one Redis. */
export function uniquePrefix(name = "t"): string {
  return `test:${name}:${randomBytes(4).toString("hex")}`;
}

export function redisClient(): Redis {
  return new Redis(redisUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 });
}
