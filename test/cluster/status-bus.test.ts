import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStore } from "../../src/cluster/job-store.js";
import { fleetKeys } from "../../src/cluster/keys.js";
import { defineScripts, NodeScripts, type ScriptedRedis } from "../../src/cluster/scripts.js";
import { type BusEvent, StatusBus } from "../../src/cluster/status-bus.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";

const logger = pino({ level: "silent" });
const opened: Redis[] = [];
function conn(name: string): Redis {
  const r = new Redis(redisUrl(), { connectionName: name, retryStrategy: () => 20 });
  opened.push(r);
  return r;
}
afterAll(async () => {
  for (const r of opened) r.disconnect();
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("status bus", () => {
  const keys = fleetKeys(uniquePrefix("bus"));
  let writer: ScriptedRedis;
  let store: JobStore;
  let owner: { nodeId: string; epoch: number };

  beforeAll(async () => {
    writer = defineScripts(conn("writer"));
    store = new JobStore(writer, keys, 10_000);
    const { epoch } = await new NodeScripts(writer, keys).registerNode("w", {});
    owner = { nodeId: "w", epoch };
  });

  it("delivers every event in order, exactly once, across dropped subscriber connections", async () => {
    const subName = `bus-sub-${Math.random().toString(36).slice(2)}`;
    const bus = new StatusBus(conn("bus-cmd"), conn(subName), keys, logger);
    await bus.start();
    const seen: BusEvent[] = [];
    bus.listen("all", (ev) => seen.push(ev));
    const admin = conn("admin");
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = `job-${i}`;
      ids.push(
        (await store.create({ id, user: "u", status: "Pending", command: "true" }, owner, [])).eventId,
      );
      if (i % 10 === 5) await admin.client("KILL", "TYPE", "pubsub"); // drop subscriptions mid-run
      ids.push((await store.update(id, owner, { status: "Running" })).eventId);
    }
    await until(() => seen.length >= ids.length);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((e) => e.eventId)).toEqual(ids);
    bus.close();
  });

  it("listens by job and by user", async () => {
    const bus = new StatusBus(conn("bus-cmd2"), conn("bus-sub2"), keys, logger);
    await bus.start();
    const byJob: string[] = [];
    const byUser: string[] = [];
    bus.listen({ jobId: "x-1" }, (ev) => byJob.push(ev.status));
    bus.listen({ user: "zed" }, (ev) => byUser.push(ev.id));
    await store.create({ id: "x-1", user: "zed", status: "Pending", command: "true" }, owner, []);
    await store.create({ id: "x-2", user: "amy", status: "Pending", command: "true" }, owner, []);
    await store.update("x-1", owner, { status: "Running" });
    await until(() => byJob.length === 2);
    expect(byJob).toEqual(["Pending", "Running"]);
    expect(byUser).toEqual(["x-1", "x-1"]);
    bus.close();
  });

  it("moves past events nobody listens to, and delivers the next ones once someone does", async () => {
    const bus = new StatusBus(conn("bus-cmd3"), conn("bus-sub3"), keys, logger);
    await bus.start();
    const { eventId: unheard } = await store.create(
      { id: "q-1", user: "u", status: "Pending", command: "true" },
      owner,
      [],
    );
    await until(() => bus.position === unheard);
    expect(bus.delivered).toBe(1);
    const seen: string[] = [];
    bus.listen({ jobId: "q-1" }, (ev) => seen.push(`${ev.eventId} ${ev.status}`));
    const { eventId } = await store.update("q-1", owner, { status: "Running" });
    await until(() => seen.length === 1);
    expect(seen).toEqual([`${eventId} Running`]);
    expect(bus.delivered).toBe(2);
    bus.close();
  });

  it("reports when retention trimmed events after a position", async () => {
    const k2 = fleetKeys(uniquePrefix("trim"));
    const s2 = new JobStore(writer, k2, 10);
    const { epoch } = await new NodeScripts(writer, k2).registerNode("w", {});
    const { eventId: first } = await s2.create(
      { id: "t0", user: "u", status: "Pending", command: "true" },
      { nodeId: "w", epoch },
      [],
    );
    const bus = new StatusBus(conn("bus-cmd3"), conn("bus-sub3"), k2, logger);
    expect(await bus.trimmedAfter(first)).toBe(false);
    for (let i = 1; i < 300; i++) {
      await s2.create(
        { id: `t${i}`, user: "u", status: "Pending", command: "true" },
        { nodeId: "w", epoch: Number(epoch) },
        [],
      );
    }
    await writer.xtrim(k2.events, "MAXLEN", 10);
    expect(await bus.trimmedAfter(first)).toBe(true);
    const last = (await writer.get(k2.eventsLast))!;
    expect(await bus.trimmedAfter(last)).toBe(false);
  });
});
