import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_STATUS_MESSAGE_LENGTH } from "../../src/api/index.js";
import { JobStore, StoreConflict } from "../../src/cluster/job-store.js";
import { fleetKeys } from "../../src/cluster/keys.js";
import { defineScripts, NodeScripts, type ScriptedRedis } from "../../src/cluster/scripts.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";

const keys = fleetKeys(uniquePrefix("store"));
let redis: ScriptedRedis;
let store: JobStore;

async function registerNode(id: string): Promise<number> {
  return (await new NodeScripts(redis, keys).registerNode(id, { host: "h" })).epoch;
}

function job(id: string, user = "alice", submissionTime = "2026-01-01T00:00:00.000Z") {
  return {
    id,
    user,
    name: `job ${id}`,
    command: "true",
    status: "Pending",
    submissionTime,
    lastUpdateTime: submissionTime,
  };
}

beforeAll(() => {
  redis = defineScripts(new Redis(redisUrl()));
  store = new JobStore(redis, keys, 1000);
});
afterAll(() => redis.quit());

describe("job store", () => {
  it("creates a job, indexes it and emits its first event atomically", async () => {
    const epoch = await registerNode("n1");
    const { eventId } = await store.create(job("a1"), { nodeId: "n1", epoch }, ["/tmp/x"]);
    expect(eventId).toMatch(/^\d+-\d+$/);
    const got = await store.get("a1");
    expect(got?.job).toMatchObject({ id: "a1", user: "alice", status: "Pending", command: "true" });
    expect(got?.owner).toBe("n1");
    expect(got?.ver).toBe(1);
    expect(got?.files).toEqual(["/tmp/x"]);
    expect(await redis.zscore(keys.jobsByUser("alice"), "a1")).not.toBeNull();
    expect(await store.unfinishedOf("n1")).toContain("a1");
    const [[id, fields]] = (await redis.xrange(keys.events, eventId, eventId)) as [[string, string[]]];
    expect(id).toBe(eventId);
    expect(JSON.parse(fields[1]!)).toMatchObject({ id: "a1", status: "Pending", ver: 1, user: "alice" });
    expect(await redis.get(keys.eventsLast)).toBe(eventId);
  });

  it("refuses a duplicate id", async () => {
    const epoch = await registerNode("n1");
    await store.create(job("dup"), { nodeId: "n1", epoch }, []);
    await expect(store.create(job("dup"), { nodeId: "n1", epoch }, [])).rejects.toMatchObject({
      kind: "EXISTS",
    });
  });

  it("updates status with a version bump and an event; terminal is final", async () => {
    const epoch = await registerNode("n2");
    const owner = { nodeId: "n2", epoch };
    await store.create(job("b1"), owner, []);
    const r1 = await store.update("b1", owner, { status: "Running", pid: 42 });
    expect(r1.ver).toBe(2);
    expect(r1.eventId).not.toBe("");
    const r2 = await store.update("b1", owner, { pid: 43 });
    expect(r2.eventId).toBe(""); // no status change, no event
    await store.update("b1", owner, { status: "Finished", exitCode: 0 });
    const got = await store.get("b1");
    expect(got?.job).toMatchObject({ status: "Finished", exitCode: 0, pid: 43 });
    expect(await store.unfinishedOf("n2")).not.toContain("b1");
    expect(await redis.zscore(keys.expiry, "b1")).not.toBeNull();
    const err = await store.update("b1", owner, { status: "Running" }).catch((e) => e);
    expect(err).toBeInstanceOf(StoreConflict);
    expect(err.kind).toBe("TERMINAL");
    expect((await store.get("b1"))?.job.status).toBe("Finished");
  });

  it("allows only the lifecycle's moves (TRANSITIONS), whatever the caller asks", async () => {
    const epoch = await registerNode("n3");
    const owner = { nodeId: "n3", epoch };
    await store.create(job("c1"), owner, []);
    for (const status of ["Suspended", "Killed", "Pending"] as const) {
      if (status === "Pending") continue; // staying Pending is no move
      await expect(store.update("c1", owner, { status })).rejects.toMatchObject({
        kind: "STATE",
        arg: "Pending",
      });
    }
    await store.update("c1", owner, { status: "Pending", statusMessage: "waiting" }); // no move: allowed
    await store.update("c1", owner, { status: "Running" });
    await expect(store.update("c1", owner, { status: "Canceled" })).rejects.toMatchObject({
      kind: "STATE",
      arg: "Running",
    });
    await store.update("c1", owner, { status: "Suspended" });
    await store.update("c1", owner, { status: "Running" });
    await store.update("c1", owner, { status: "Killed" });
    expect((await store.get("c1"))?.job.status).toBe("Killed");
  });

  it("fences writes from a stale epoch and from non-owners", async () => {
    const old = await registerNode("n4");
    await store.create(job("d1"), { nodeId: "n4", epoch: old }, []);
    const current = await registerNode("n4");
    await expect(
      store.update("d1", { nodeId: "n4", epoch: old }, { status: "Running" }),
    ).rejects.toMatchObject({
      kind: "FENCED",
      arg: String(current),
    });
    await expect(store.create(job("d2"), { nodeId: "n4", epoch: old }, [])).rejects.toMatchObject({
      kind: "FENCED",
    });
    const other = await registerNode("n5");
    await expect(
      store.update("d1", { nodeId: "n5", epoch: other }, { status: "Running" }),
    ).rejects.toMatchObject({
      kind: "NOTOWNER",
    });
    expect((await store.get("d1"))?.job.status).toBe("Pending");
  });

  it("lists by user and inclusive submission-time bounds from the indexes", async () => {
    const epoch = await registerNode("n6");
    const owner = { nodeId: "n6", epoch };
    await store.create(job("e1", "bob", "2026-02-01T00:00:00.000Z"), owner, []);
    await store.create(job("e2", "bob", "2026-02-02T00:00:00.000Z"), owner, []);
    await store.create(job("e3", "carol", "2026-02-03T00:00:00.000Z"), owner, []);
    const bob = await store.list({ user: "bob" });
    expect(bob.map((s) => s.job.id).sort()).toEqual(["e1", "e2"]);
    const ranged = await store.list({
      startMs: Date.parse("2026-02-02T00:00:00.000Z"),
      endMs: Date.parse("2026-02-03T00:00:00.000Z"),
    });
    expect(ranged.map((s) => s.job.id).sort()).toEqual(["e2", "e3"]);
  });

  it("settles a lost node's unfinished jobs exactly once and bumps its epoch", async () => {
    const epoch = await registerNode("lost");
    const owner = { nodeId: "lost", epoch };
    await store.create(job("f1"), owner, []);
    await store.create(job("f2"), owner, []);
    await store.update("f2", owner, { status: "Finished", exitCode: 0 });
    // Not lost yet: its heartbeat is fresh.
    expect(await store.settleLost("lost", 60_000, "gone", "2026-01-01T00:00:00Z")).toBe("not-lost");
    await redis.zadd(keys.nodes, 0, "lost"); // last heartbeat long ago
    const results = await Promise.all(
      [1, 2, 3].map(() => store.settleLost("lost", 1000, "Node lost was lost", "2026-01-01T00:00:01.000Z")),
    );
    // f1 was placed on its receiving node and may have started (launching): Failed, not requeued.
    expect(results.filter((r) => r === "already-settled")).toHaveLength(2);
    expect(results.find((r) => typeof r === "object")).toEqual({ failed: 1, requeued: 0 });
    expect((await store.get("f1"))?.job).toMatchObject({
      status: "Failed",
      statusMessage: "Node lost was lost",
    });
    expect((await store.get("f2"))?.job.status).toBe("Finished");
    await expect(store.update("f1", owner, { status: "Finished", exitCode: 0 })).rejects.toMatchObject({
      kind: "FENCED",
    });
  });

  it("expires terminal jobs of this node and returns their files", async () => {
    const epoch = await registerNode("n7");
    const owner = { nodeId: "n7", epoch };
    await store.create(job("g1", "dave"), owner, ["/tmp/g1.stdout"]);
    await store.update("g1", owner, { status: "Finished", exitCode: 0 });
    await store.create(job("g2", "dave"), owner, []);
    expect(await store.expire(Date.now() - 60_000, "n7")).toEqual([]);
    const removed = await store.expire(Date.now() + 1000, "n7");
    expect(removed.map((r) => r.id)).toContain("g1");
    expect(removed.find((r) => r.id === "g1")?.files).toEqual(["/tmp/g1.stdout"]);
    expect(await store.get("g1")).toBeUndefined();
    expect(await redis.zscore(keys.jobsByUser("dave"), "g1")).toBeNull();
    expect(await store.get("g2")).toBeDefined();
  });

  it("reads jobs in batches, in the order asked, skipping vanished ids; summaries match full reads", async () => {
    const epoch = await registerNode("n8");
    const owner = { nodeId: "n8", epoch };
    const ids = ["h3", "h1", "h5", "h2", "h4"];
    for (const id of ids) await store.create(job(id, "erin"), owner, ["/tmp/x"]);
    await store.create({ ...job("h6", "erin"), name: "" }, owner, []);
    await store.create({ ...job("h7", "erin"), name: undefined }, owner, []);
    await store.update("h1", owner, { status: "Running", pid: 42 });
    await store.update("h2", owner, {
      status: "Failed",
      statusMessage: "boom",
      exitCode: 3,
      statusCode: "E1",
    });
    const asked = [...ids, "missing", "h6", "h7"];

    const batches: string[][] = [];
    for await (const batch of store.readBatches(asked, { batchSize: 2 })) {
      batches.push(batch.map((s) => s.job.id));
    }
    expect(batches).toEqual([["h3", "h1"], ["h5", "h2"], ["h4"], ["h6", "h7"]]);
    const full = (await store.getMany(asked)).map((s) => s.job.id);
    expect(full).toEqual(["h3", "h1", "h5", "h2", "h4", "h6", "h7"]);

    // A summary is the full read's id, non-empty name and mutable fields, owner, user and ver.
    const summaries = [];
    for await (const batch of store.readBatches(asked, { batchSize: 3, summary: true }))
      summaries.push(...batch);
    const fulls = await store.getMany(asked);
    expect(summaries.map((s) => s.job.id)).toEqual(fulls.map((s) => s.job.id));
    summaries.forEach((sum, i) => {
      const f = fulls[i]!;
      const { id, name, status, host, node, statusMessage, statusCode, pid, exitCode, lastUpdateTime } =
        f.job;
      const expected = {
        id,
        name: name || undefined,
        status,
        host,
        node,
        statusMessage,
        statusCode,
        pid,
        exitCode,
        lastUpdateTime,
      };
      expect(sum.job).toEqual(JSON.parse(JSON.stringify(expected)));
      expect({ owner: sum.owner, user: sum.user, ver: sum.ver }).toEqual({
        owner: f.owner,
        user: f.user,
        ver: f.ver,
      });
    });
    expect(summaries.find((s) => s.job.id === "h2")?.job).toEqual({
      id: "h2",
      name: "job h2",
      status: "Failed",
      host: "h",
      node: "n8",
      statusMessage: "boom",
      statusCode: "E1",
      exitCode: 3,
      lastUpdateTime: "2026-01-01T00:00:00.000Z",
    });
  });
});

describe("bounded status events", () => {
  it("cuts a statusMessage to MAX_STATUS_MESSAGE_LENGTH characters, in the job and in its event", async () => {
    const epoch = await registerNode("n9");
    const owner = { nodeId: "n9", epoch };
    await store.create(job("m1"), owner, []);
    // 5,000 characters, astral ones among them: the cut never splits a surrogate pair.
    const long = `x${"😀".repeat(4_999)}`;
    const { eventId } = await store.update("m1", owner, { status: "Failed", statusMessage: long });
    const stored = (await store.get("m1"))?.job.statusMessage ?? "";
    expect([...stored].length).toBe(MAX_STATUS_MESSAGE_LENGTH);
    expect(long.startsWith(stored)).toBe(true);
    const [[, fields] = ["", []]] = (await redis.xrange(keys.events, eventId, eventId)) as [
      string,
      string[],
    ][];
    expect((JSON.parse(fields[1]!) as { statusMessage: string }).statusMessage).toBe(stored);
  });

  it("a short statusMessage is kept as it is", async () => {
    const epoch = await registerNode("n10");
    const owner = { nodeId: "n10", epoch };
    await store.create(job("m2"), owner, []);
    await store.update("m2", owner, { status: "Canceled", statusMessage: "Canceled by user" });
    expect((await store.get("m2"))?.job.statusMessage).toBe("Canceled by user");
  });
});
