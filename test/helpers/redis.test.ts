import { afterAll, describe, expect, it } from "vitest";
import { redisClient, uniquePrefix } from "./redis.js";

describe("test redis", () => {
  const redis = redisClient();
  afterAll(() => redis.quit());

  it("is a real redis-server without persistence", async () => {
    const info = await redis.info("server");
    expect(info).toMatch(/redis_version:\d+/);
    expect(await redis.config("GET", "appendonly")).toEqual(["appendonly", "no"]);
  });

  it("gives each caller its own prefix", () => {
    expect(uniquePrefix("a")).not.toEqual(uniquePrefix("a"));
  });
});
