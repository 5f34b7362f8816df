import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { ApiError, ErrCode } from "../../src/api/index.js";
import { JobStore } from "../../src/cluster/job-store.js";
import { fleetKeys } from "../../src/cluster/keys.js";
import { fullRefreshBeats } from "../../src/cluster/node-table.js";
import { Registry } from "../../src/cluster/registry.js";
import { defineScripts } from "../../src/cluster/scripts.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";

const logger = pino({ level: "silent" });
const keys = fleetKeys(uniquePrefix("reg"));
const conns: Redis[] = [];
const registries: Registry[] = [];

afterAll(async () => {
  for (const r of registries) await r.close().catch(() => undefined);
  for (const c of conns) c.disconnect();
});

function node(
  id: string,
  opts: {
    skewMs?: number;
    onFenced?: () => Promise<void>;
    fullRefreshMs?: number;
    fleet?: ReturnType<typeof fleetKeys>;
    labels?: Record<string, string>;
  } = {},
) {
  const fleet = opts.fleet ?? keys;
  const redis = defineScripts(new Redis(redisUrl(), { retryStrategy: () => 50, maxRetriesPerRequest: 1 }));
  const sub = new Redis(redisUrl());
  conns.push(redis, sub);
  const store = new JobStore(redis, fleet, 1000);
  const registry = new Registry(
    { redis, sub, keys: fleet, store, logger },
    {
      nodeId: id,
      host: `host-${id}`,
      ipv4: "127.0.0.1",
      port: "1",
      slots: 0,
      labels: opts.labels ?? {},
      queues: ["default"],
    },
    {
      heartbeatMs: 100,
      offlineAfterMs: 400,
      lostAfterMs: 1200,
      runningJobs: () => 0,
      onFenced: opts.onFenced ?? (async () => undefined),
      clock: () => Date.now() + (opts.skewMs ?? 0),
      ...(opts.fullRefreshMs !== undefined ? { fullRefreshMs: opts.fullRefreshMs } : {}),
    },
  );
  registries.push(registry);
  return { registry, redis, sub, store };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

describe("registry", () => {
  it("judges liveness on Redis time, settles a lost node once, and fences it when it returns", async () => {
    let fencedCalls = 0;
    const a = node("a", { onFenced: async () => void fencedCalls++ });
    const b = node("b", { skewMs: 5 * 60_000 }); // clocks off by minutes
    const c = node("c", { skewMs: -7 * 60_000 });
    await Promise.all([a.registry.start(), b.registry.start(), c.registry.start()]);

    await until(
      async () => (await b.registry.listNodes()).length === 3 && (await c.registry.listNodes()).length === 3,
    );
    for (const r of [a, b, c])
      expect((await r.registry.listNodes()).map((n) => [n.id, n.online])).toEqual([
        ["a", true],
        ["b", true],
        ["c", true],
      ]);
    const view = (await b.registry.lookup("a"))!;
    expect(view).toMatchObject({ host: "host-a", ipv4: "127.0.0.1", port: "1", status: "Online" });
    expect(Math.abs(Date.parse(view.lastSeen) - Date.now())).toBeLessThan(2000);

    // A job owned by a, then a falls silent (its connection to Redis is cut).
    await a.store.create(
      { id: "job-a", user: "u", status: "Pending", command: "true" },
      { nodeId: "a", epoch: a.registry.epoch },
      [],
    );
    const epochBefore = a.registry.epoch;
    a.redis.disconnect(false);
    const cutAt = Date.now();
    await until(
      async () => !(await b.registry.lookup("a"))?.online && !(await c.registry.lookup("a"))?.online,
    );
    const offlineSeenAfter = Date.now() - cutAt;
    expect(offlineSeenAfter).toBeLessThan(400 + 100 + 400); // OFFLINE_AFTER + a heartbeat (+ slack for CI)

    await until(async () => (await b.store.get("job-a"))?.job.status === "Failed", 5000);
    const job = (await b.store.get("job-a"))!.job;
    expect(job.statusMessage).toMatch(/^Node a was lost/);
    // Exactly one event for the settlement, whichever of b and c ran the script.
    const events = (await b.redis.xrange(keys.events, "-", "+")) as [string, string[]][];
    const failed = events.filter(([, f]) => f[1]!.includes('"job-a"') && f[1]!.includes("Failed"));
    expect(failed).toHaveLength(1);

    // a comes back: its next heartbeat finds a newer epoch, it reconciles and re-registers.
    await a.redis.connect();
    await until(() => fencedCalls > 0);
    await until(() => a.registry.epoch > epochBefore + 1);
    await expect(
      a.store.update("job-a", { nodeId: "a", epoch: epochBefore }, { status: "Finished", exitCode: 0 }),
    ).rejects.toMatchObject({ kind: "FENCED" });
    expect((await b.store.get("job-a"))!.job.status).toBe("Failed");
    await until(async () => (await b.registry.lookup("a"))?.online === true);
  });

  it("a status change reaches peers at once through the notice channel", async () => {
    const d = node("d");
    const e = node("e");
    await Promise.all([d.registry.start(), e.registry.start()]);
    await d.registry.setStatus("Draining");
    await until(async () => (await e.registry.lookup("d"))?.status === "Draining", 1000);
    expect((await e.registry.lookup("d"))?.online).toBe(false);
  });

  it("a node back after being Offline is seen Online even by a peer that missed the notice", async () => {
    const f = node("f");
    const g = node("g");
    await Promise.all([f.registry.start(), g.registry.start()]);
    await g.registry.close(); // a clean stop: status Offline, notice sent
    await until(async () => (await f.registry.lookup("g"))?.status === "Offline", 2000);
    // Pub/sub is at-most-once: f stops hearing notices, then g starts again under its id.
    await f.sub.unsubscribe();
    const g2 = node("g");
    await g2.registry.start();
    await until(async () => (await f.registry.lookup("g"))?.online === true, 2000);
    expect((await f.registry.listNodes()).find((n) => n.id === "g")).toMatchObject({
      status: "Online",
      online: true,
    });
  });

  it("a node that joined while a peer's subscriber was away is known to the peer once it is back", async () => {
    // No periodic re-read within the test: only the reconnect can bring the missed join.
    const h = node("h", { fullRefreshMs: 600_000 });
    await h.registry.start();
    h.sub.disconnect(); // the join notice below is lost to h
    const i = node("i");
    await i.registry.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(h.registry.node("i")).toBeUndefined();
    await h.sub.connect();
    await until(() => h.registry.node("i") !== undefined, 2000);
    expect(h.registry.node("i")).toMatchObject({ status: "Online", host: "host-i" });
  });

  it("a lookup while Redis is away is the API's 503 code 4 (requests route through it), not a raw Redis error", async () => {
    const j = node("j");
    await j.registry.start();
    j.redis.disconnect();
    const err = await j.registry.lookup("someone-else").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      code: ErrCode.PluginRestarted,
      message: expect.stringMatching(/^Redis is unreachable/),
    });
  });

  it("placementNodes is one array until the table changes (heartbeats do not); a join changes it", async () => {
    const fleet = fleetKeys(uniquePrefix("reg-placement")); // no other test's nodes come and go here
    const m = node("m", { fleet });
    await m.registry.start();
    const before = m.registry.placementNodes();
    expect(before.map((n) => n.id)).toEqual(["m"]);
    const changes = m.registry.nodeChanges;
    await new Promise((r) => setTimeout(r, 350)); // heartbeats do not change it
    expect(m.registry.placementNodes()).toBe(before);
    expect(m.registry.nodeChanges).toBe(changes);
    const n = node("n", { fleet, labels: { gpu: "a100" } });
    await n.registry.start();
    await until(() => m.registry.placementNodes() !== before, 2000);
    expect(m.registry.placementNodes()).toEqual([
      { id: "m", status: "Online", queues: ["default"], labels: {} },
      { id: "n", status: "Online", queues: ["default"], labels: { gpu: "a100" } },
    ]);
  });
});

describe("fleetCounts (every health check reads it)", () => {
  it("counts known and online nodes as the views judge them, a silent node not online", async () => {
    const fleet = fleetKeys(uniquePrefix("reg-counts"));
    const p = node("p", { fleet });
    const q = node("q", { fleet });
    await Promise.all([p.registry.start(), q.registry.start()]);
    await until(async () => (await p.registry.fleetCounts(true)).online === 2);
    expect(await p.registry.fleetCounts()).toEqual({ online: 2, total: 2 });

    q.redis.disconnect(false); // q falls silent; its record still says Online
    await until(async () => (await p.registry.fleetCounts()).online === 1);
    const views = p.registry.nodes();
    expect(await p.registry.fleetCounts()).toEqual({
      online: views.filter((v) => v.online).length,
      total: views.length,
    });
    expect(views.map((v) => [v.id, v.online])).toEqual([
      ["p", true],
      ["q", false],
    ]);
  });
});

describe("fullRefreshBeats", () => {
  it("re-reads every 10 beats up to 100 nodes, then every N/10, so a fleet's re-reads grow with N, not N²", () => {
    expect([1, 3, 100, 101, 1_000, 10_000].map(fullRefreshBeats)).toEqual([10, 10, 10, 11, 100, 1_000]);
    // Entries the whole fleet reads per beat: N nodes × N entries / period.
    const perBeat = (n: number) => (n * n) / fullRefreshBeats(n);
    expect(perBeat(10_000)).toBe(10 * 10_000);
  });
});
