// The fleet queue's scripts against a real Redis: placement at creation (most free slots, ties to
// the receiver, queues and labels), FIFO claims across classes, the per-user cap, epoch fencing,
// cancel from any node, and a lost or draining node's never-started jobs going back to the queue.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job, PlacementConstraint } from "../../src/api/index.js";
import { JobStore, StoreConflict } from "../../src/cluster/job-store.js";
import { fleetKeys, type Keys } from "../../src/cluster/keys.js";
import { defineScripts, NodeScripts, type ScriptedRedis } from "../../src/cluster/scripts.js";
import { eligible, jobQueues, queueClass, waitingFor } from "../../src/launcher/placement.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";

let redis: ScriptedRedis;
let seq = 0;

beforeAll(() => {
  redis = defineScripts(new Redis(redisUrl()));
});
afterAll(() => redis.quit());

interface TestNode {
  id: string;
  slots: number;
  labels?: Record<string, string>;
  queues?: string[];
}

/** A fleet of registered, Online node records (no processes): what the scripts see. */
async function fleet(nodes: TestNode[]) {
  const keys = fleetKeys(uniquePrefix("fq"));
  const store = new JobStore(redis, keys, 10_000);
  const epochs = new Map<string, number>();
  for (const n of nodes) {
    const { epoch } = await new NodeScripts(redis, keys).registerNode(n.id, {
      host: `host-${n.id}`,
      status: "Online",
      slots: n.slots,
      labels: JSON.stringify(n.labels ?? {}),
      queues: JSON.stringify(n.queues ?? ["default"]),
    });
    epochs.set(n.id, epoch);
  }
  const views = nodes.map((n) => ({ id: n.id, labels: n.labels ?? {}, queues: n.queues ?? ["default"] }));
  const writer = (id: string) => ({ nodeId: id, epoch: epochs.get(id)! });

  /** Submits through `receiver`, as JobManager.submit does; returns where it went. */
  async function submit(receiver: string, user = "alice", extra: Partial<Job> = {}, cap = 0) {
    const id = `j${String(++seq).padStart(5, "0")}`;
    const now = new Date().toISOString();
    const job: Job = { id, user, command: "true", status: "Pending", submissionTime: now, ...extra };
    const queues = jobQueues(job, "default");
    const constraints: PlacementConstraint[] | undefined = job.placementConstraints;
    const candidates = views
      .filter((v) => eligible(v, queues, constraints))
      .map((v) => v.id)
      .sort((a, b) => (a === receiver ? -1 : b === receiver ? 1 : 0));
    const cls = queueClass(queues, constraints, user);
    const placed = await store.create(job, writer(receiver), [], {
      candidates,
      classId: cls.id,
      classDescriptor: cls.descriptor,
      queuedMessage: waitingFor(queues, constraints),
      userCapMessage: "Queued: user cap",
      offlineAfterMs: 60_000,
      perUserCap: cap,
    });
    return { id, ...placed };
  }

  const claimResult = (nodeId: string, max = 100, cap = 0) =>
    store.claim({
      node: writer(nodeId),
      max,
      perUserCap: cap,
      offlineAfterMs: 60_000,
      nowIso: new Date().toISOString(),
      statusMessage: `Starting on node ${nodeId}`,
    });
  const claim = async (nodeId: string, max = 100, cap = 0) => (await claimResult(nodeId, max, cap)).claimed;

  /** A job ends on its node: its slot (and its user's) frees. */
  const finish = (id: string, nodeId: string) =>
    store.update(id, writer(nodeId), { status: "Finished", exitCode: 0 });

  return { keys, store, submit, claim, claimResult, finish, writer, epochs };
}

async function placedOn(keys: Keys, nodeId: string): Promise<string[]> {
  return (await redis.smembers(keys.nodeJobs(nodeId))).sort();
}

describe("placement at submission", () => {
  it("goes to the node with the most free slots, ties to the receiver, peers through their inbox", async () => {
    const f = await fleet([
      { id: "a", slots: 2 },
      { id: "b", slots: 3 },
      { id: "c", slots: 2 },
    ]);
    // b has the most free slots (3), whoever receives.
    const first = await f.submit("a");
    expect(first).toMatchObject({ nodeId: "b", host: "host-b", statusMessage: "" });
    expect(await redis.lrange(f.keys.nodeInbox("b"), 0, -1)).toEqual([first.id]);
    // Now a, b and c all have 2 free: the receiver wins the tie.
    expect((await f.submit("c")).nodeId).toBe("c");
    expect((await f.store.get(first.id))?.launching).toBe(false);
    expect(await f.store.takeInbox(f.writer("b"))).toEqual([first.id]);
    expect((await f.store.get(first.id))?.launching).toBe(true);
    // Taken once: a second take finds nothing.
    expect(await f.store.takeInbox(f.writer("b"))).toEqual([]);
  });

  it("queues when no eligible node has room, and the first node to free a slot claims in order", async () => {
    const f = await fleet([
      { id: "a", slots: 1 },
      { id: "b", slots: 1 },
    ]);
    const started = [await f.submit("a"), await f.submit("a")];
    expect(started.map((s) => s.nodeId).sort()).toEqual(["a", "b"]);
    const queued = [await f.submit("a"), await f.submit("b"), await f.submit("a")];
    for (const q of queued) {
      expect(q.nodeId).toBe("");
      expect(q.statusMessage).toMatch(/^Queued: waiting for a free slot on a node serving queue "default"/);
      const job = (await f.store.get(q.id))!;
      expect(job.job.host).toBeUndefined();
      expect(job.owner).toBe("");
    }
    // No free slot: nothing to claim.
    expect(await f.claim("a")).toEqual([]);
    await f.finish(started.find((s) => s.nodeId === "b")!.id, "b");
    const claimed = await f.claim("b");
    expect(claimed.map((c) => c.id)).toEqual([queued[0]!.id]);
    expect(claimed[0]!.queuedMs).toBeGreaterThan(0);
    const job = (await f.store.get(queued[0]!.id))!;
    expect(job).toMatchObject({ owner: "b", launching: true });
    expect(job.job.host).toBe("host-b");
    expect(await placedOn(f.keys, "b")).toEqual([queued[0]!.id]);
  });

  it("a claim says when the fleet queue is empty; a queue with jobs the node cannot take now is not", async () => {
    const f = await fleet([{ id: "a", slots: 1 }]);
    expect(await f.claimResult("a")).toEqual({ claimed: [], queueEmpty: true });
    const running = await f.submit("a");
    const queued = await f.submit("a");
    expect(queued.nodeId).toBe("");
    // No free slot: nothing claimed, but something waits.
    expect(await f.claimResult("a")).toEqual({ claimed: [], queueEmpty: false });
    await f.finish(running.id, "a");
    const taken = await f.claimResult("a");
    expect(taken.claimed.map((c) => c.id)).toEqual([queued.id]);
    expect(taken.queueEmpty).toBe(false);
    expect(await f.claimResult("a")).toEqual({ claimed: [], queueEmpty: true });
  });

  it("a job waits behind older queued jobs of its class even when a slot is free", async () => {
    const f = await fleet([{ id: "a", slots: 1 }]);
    const running = await f.submit("a");
    const older = await f.submit("a");
    expect(older.nodeId).toBe("");
    await f.finish(running.id, "a");
    // The slot is free, but `older` waits for it: the new job queues behind it.
    expect((await f.submit("a")).nodeId).toBe("");
    expect((await f.claim("a")).map((c) => c.id)).toEqual([older.id]);
  });

  it("queues and labels: jobs reach only nodes that serve their queue and have their labels", async () => {
    const f = await fleet([
      { id: "plain", slots: 4 },
      { id: "gpu", slots: 1, labels: { gpu: "a100", zone: "b" }, queues: ["default", "gpu"] },
    ]);
    const byQueue = await f.submit("plain", "alice", { queues: ["gpu"] });
    expect(byQueue.nodeId).toBe("gpu");
    const byLabel = await f.submit("plain", "alice", {
      placementConstraints: [{ name: "gpu", value: "a100" }],
    });
    expect(byLabel.nodeId).toBe(""); // the gpu node's one slot is taken
    const anyZone = await f.submit("plain", "alice", { placementConstraints: [{ name: "zone" }] });
    expect(anyZone.nodeId).toBe("");
    const plain = await f.submit("gpu");
    expect(plain.nodeId).toBe("plain"); // 4 free against 0
    // The plain node may not take the labelled jobs, however many slots it has free.
    expect(await f.claim("plain")).toEqual([]);
    await f.finish(byQueue.id, "gpu");
    expect((await f.claim("gpu")).map((c) => c.id)).toEqual([byLabel.id]);
  });

  it("claims in submission order across classes", async () => {
    const f = await fleet([{ id: "a", slots: 1 }]);
    const running = await f.submit("a", "zoe");
    const order = [
      await f.submit("a", "bob"),
      await f.submit("a", "alice", { queues: ["default"], placementConstraints: [] }),
      await f.submit("a", "bob"),
      await f.submit("a", "carol"),
    ];
    expect(order.every((o) => o.nodeId === "")).toBe(true);
    await redis.hset(f.keys.node("a"), "slots", 10);
    await f.finish(running.id, "a");
    expect((await f.claim("a")).map((c) => c.id)).toEqual(order.map((o) => o.id));
    // Emptied classes are forgotten: the claim script looks at no stale class.
    expect(await redis.hlen(f.keys.queueClasses)).toBe(0);
    expect(await redis.zcard(f.keys.queueHeads)).toBe(0);
  });

  it("the per-user cap holds fleet-wide, while other users' jobs still start", async () => {
    const cap = 2;
    const f = await fleet([
      { id: "a", slots: 10 },
      { id: "b", slots: 10 },
    ]);
    const alice = [];
    for (let i = 0; i < 4; i++) alice.push(await f.submit(i % 2 ? "a" : "b", "alice", {}, cap));
    expect(alice.map((j) => j.nodeId !== "")).toEqual([true, true, false, false]);
    expect(alice[2]!.statusMessage).toBe("Queued: user cap");
    expect((await f.submit("a", "bob", {}, cap)).nodeId).not.toBe("");
    // Room on both nodes, but alice is at her cap.
    expect(await f.claim("a", 100, cap)).toEqual([]);
    await f.finish(alice[0]!.id, alice[0]!.nodeId);
    expect((await f.claim("a", 100, cap)).map((c) => c.id)).toEqual([alice[2]!.id]);
    expect(await f.claim("b", 100, cap)).toEqual([]);
  });

  it("cancel: any node takes a queued job out of the queue; a claimed one belongs to its node", async () => {
    const f = await fleet([{ id: "a", slots: 1 }]);
    const running = await f.submit("a");
    const queued = await f.submit("a");
    await f.store.cancelQueued(queued.id, "Canceled by user", new Date().toISOString());
    expect((await f.store.get(queued.id))?.job).toMatchObject({ status: "Canceled" });
    expect(await redis.zscore(f.keys.expiry, queued.id)).not.toBeNull();
    await f.finish(running.id, "a");
    expect(await f.claim("a")).toEqual([]); // the canceled job never starts
    await expect(
      f.store.cancelQueued(running.id, "Canceled by user", new Date().toISOString()),
    ).rejects.toBeInstanceOf(StoreConflict);
    const other = await f.submit("a");
    await expect(f.store.cancelQueued(other.id, "x", new Date().toISOString())).rejects.toMatchObject({
      kind: "OWNED",
      arg: "a",
    });
  });

  it("a stale epoch claims and takes nothing", async () => {
    const f = await fleet([{ id: "a", slots: 1 }]);
    const stale = f.writer("a");
    await new NodeScripts(redis, f.keys).registerNode("a", { status: "Online", slots: 1 }); // restarted
    await expect(
      f.store.claim({
        node: stale,
        max: 1,
        perUserCap: 0,
        offlineAfterMs: 60_000,
        nowIso: "",
        statusMessage: "",
      }),
    ).rejects.toMatchObject({ kind: "FENCED" });
    await expect(f.store.takeInbox(stale)).rejects.toMatchObject({ kind: "FENCED" });
  });
});

describe("never strand a job", () => {
  it("a lost node's never-started jobs go back to the queue in order; its running ones fail", async () => {
    const f = await fleet([
      { id: "doomed", slots: 3 },
      { id: "b", slots: 0 },
    ]);
    await redis.hset(f.keys.node("b"), "status", "Draining"); // b takes nothing for now
    const launched = await f.submit("doomed"); // receiver: marked launching
    const inbox1 = await f.submit("b"); // placed on doomed by b: in doomed's inbox
    const inbox2 = await f.submit("b");
    expect([launched, inbox1, inbox2].map((j) => j.nodeId)).toEqual(["doomed", "doomed", "doomed"]);
    await f.store.update(launched.id, f.writer("doomed"), { status: "Running", pid: 1 });
    await redis.zadd(f.keys.nodes, 0, "doomed"); // silent for ever
    const settled = await f.store.settleLost(
      "doomed",
      1000,
      "Node doomed was lost",
      new Date().toISOString(),
    );
    expect(settled).toEqual({ failed: 1, requeued: 2 });
    expect((await f.store.get(launched.id))?.job.status).toBe("Failed");
    for (const id of [inbox1.id, inbox2.id]) {
      const job = (await f.store.get(id))!;
      expect(job.owner).toBe("");
      expect(job.job.status).toBe("Pending");
      expect(job.job.statusMessage).toMatch(/^Queued again: node doomed was lost/);
    }
    expect(await redis.exists(f.keys.nodeInbox("doomed"))).toBe(0);
    await redis.hset(f.keys.node("b"), "status", "Online");
    expect((await f.claim("b")).map((c) => c.id)).toEqual([inbox1.id, inbox2.id]);
  });

  it("a draining node gives the jobs in its inbox back", async () => {
    const f = await fleet([
      { id: "d", slots: 5 },
      { id: "b", slots: 1 },
    ]);
    const placed = await f.submit("b"); // d has more free slots
    expect(placed.nodeId).toBe("d");
    await redis.hset(f.keys.node("d"), "status", "Draining");
    expect(
      await f.store.releaseInbox(f.writer("d"), "Queued again: draining", new Date().toISOString()),
    ).toBe(1);
    expect(await placedOn(f.keys, "d")).toEqual([]);
    expect((await f.claim("b")).map((c) => c.id)).toEqual([placed.id]);
    expect(await f.store.takeInbox(f.writer("d"))).toEqual([]);
  });
});
