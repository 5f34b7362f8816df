// A node cut off from Redis (through a TCP proxy the test controls) is declared lost by its peers,
// which settle its running jobs as Failed. When the partition heals it is fenced: its stale writes
// are refused, it terminates the orphaned processes, and it rejoins under a newer epoch.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { api, FAST, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import {
  adminRedis,
  alive,
  nodeView,
  startFleet,
  streamEvents,
  submit,
  TcpProxy,
  tearDown,
  track,
  waitAllOnline,
  waitStatus,
} from "./helpers.js";

const nodes: TestNode[] = [];
const pids: number[] = [];
let proxy: TcpProxy | undefined;
let redis: Redis | undefined;
const figures: Record<string, number> = {};

afterAll(async () => {
  await tearDown({ figures: ["partition", figures], pids, nodes: [nodes], redis });
  await proxy?.close();
});

describe("a partitioned node that comes back after being declared lost", () => {
  it("is fenced: its job stays Failed, its orphan is terminated, it rejoins under a new epoch", async () => {
    const prefix = uniquePrefix("fleet-part");
    redis = adminRedis(redisUrl());
    proxy = await TcpProxy.start(Number(new URL(redisUrl()).port));
    const [a, peers] = await Promise.all([
      track(startTestNode(prefix, { redisUrl: proxy.url }), nodes),
      startFleet(prefix, 2).then((f) => {
        nodes.push(...f);
        return f;
      }),
    ]);
    const [b, c] = peers as [TestNode, TestNode];
    const aId = a.settings.nodeId;
    await waitAllOnline(
      nodes.map((n) => n.url),
      nodes.map((n) => n.settings.nodeId),
    );
    const tok = await token("pat");
    const gate = join(mkdtempSync(join(tmpdir(), "fleet-gate-")), "go");

    const orphan = await submit(a.url, tok, { command: "sleep 60", name: "orphan" });
    const late = await submit(a.url, tok, {
      command: `while [ ! -e ${gate} ]; do sleep 0.05; done; exit 7`,
      name: "late",
    });
    const orphanPid = (await waitStatus(b.url, tok, orphan, "Running")).pid as number;
    const latePid = (await waitStatus(b.url, tok, late, "Running")).pid as number;
    pids.push(orphanPid, latePid);
    const epochBefore = Number(await redis.hget(`${prefix}:node:${aId}`, "epoch"));

    // Cut A off from Redis.
    proxy.cut();
    const cutAt = Date.now();
    await until(async () => (await fetch(`${a.url}/readyz`)).status === 503, {
      timeoutMs: 5_000,
      everyMs: 10,
    });
    figures.readyz503AfterCut = Date.now() - cutAt;
    const status = await api(a.url, "GET", "/status");
    expect(status.status).toBe(503);
    expect(status.body).toMatchObject({ status: "Yellow", redis: { connected: false } });
    // A request that needs Redis fails fast on A, it does not hang.
    const t = Date.now();
    const read = await api(a.url, "GET", `/jobs/${orphan}`, { token: tok });
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({ code: 4 });
    expect(Date.now() - t).toBeLessThan(2_500);

    // The peers declare A lost and settle its jobs.
    await until(async () => (await nodeView(b.url, aId))?.online === false, { timeoutMs: 5_000 });
    for (const id of [orphan, late]) {
      const failed = await waitStatus(c.url, tok, id, "Failed", FAST.lostAfterMs + 5_000);
      expect(String(failed.statusMessage)).toContain(aId);
    }
    figures.settledAfterCut = Date.now() - cutAt;
    expect(Number(await redis.hget(`${prefix}:node:${aId}`, "epoch"))).toBe(epochBefore + 1);
    // Meanwhile, on A's host, the processes still run (A knows nothing yet), and readiness stays off.
    expect(alive(orphanPid)).toBe(true);
    expect((await fetch(`${a.url}/readyz`)).status).toBe(503);

    // The "late" job ends while A is still cut off: A will try to record exit code 7.
    writeFileSync(gate, "");
    await until(() => !alive(latePid), { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 3 * FAST.heartbeatMs));

    // Heal: A learns it was fenced, terminates the orphan and registers again.
    proxy.heal();
    const healAt = Date.now();
    await until(() => !alive(orphanPid), { timeoutMs: 10_000 });
    figures.orphanTerminatedAfterHeal = Date.now() - healAt;
    await until(async () => (await fetch(`${a.url}/readyz`)).status === 200, { timeoutMs: 10_000 });
    figures.readyAfterHeal = Date.now() - healAt;
    await until(
      async () =>
        (await nodeView(b.url, aId))?.online === true && (await nodeView(c.url, aId))?.online === true,
      {
        timeoutMs: 5_000,
      },
    );
    const record = await redis.hgetall(`${prefix}:node:${aId}`);
    expect(Number(record.epoch)).toBe(epochBefore + 2);
    expect(record.settledEpoch).toBe(String(epochBefore + 1));
    expect(record.status).toBe("Online");

    // Give A's stale write of exit code 7 every chance to land: it must have been refused.
    await new Promise((r) => setTimeout(r, 5 * FAST.heartbeatMs));
    for (const n of nodes) {
      const lateJob = await api(n.url, "GET", `/jobs/${late}`, { token: tok });
      expect(lateJob.body).toMatchObject({ status: "Failed" });
      expect(lateJob.body.exitCode).toBeUndefined();
      expect((await api(n.url, "GET", `/jobs/${orphan}`, { token: tok })).body).toMatchObject({
        status: "Failed",
      });
    }
    const events = await streamEvents(redis, prefix);
    for (const id of [orphan, late]) {
      expect(events.filter((e) => e.id === id).map((e) => e.status)).toEqual([
        "Pending",
        "Running",
        "Failed",
      ]);
    }
    expect(await redis.scard(`${prefix}:node:${aId}:jobs`)).toBe(0);

    // A is a normal member again: it runs new work under its new epoch.
    const fresh = await submit(a.url, tok, { command: "exit 5" });
    expect((await waitStatus(b.url, tok, fresh, "Finished")).exitCode).toBe(5);
  });
});
