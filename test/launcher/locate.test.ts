// NodeService.locate remembers each located job's owner and user (both immutable), so routing reads
// Redis once per job; it reads again whenever the answer would come from this node instead of the
// owner (owner offline, draining or unknown), so such answers are never based on a stale entry.
import { describe, expect, it } from "vitest";
import { ApiError, ErrCode, type NodeView } from "../../src/api/index.js";
import type { JobStore, StoredJob } from "../../src/cluster/job-store.js";
import type { Registry } from "../../src/cluster/registry.js";
import type { StatusBus } from "../../src/cluster/status-bus.js";
import type { JobManager } from "../../src/launcher/job-manager.js";
import { JobOwners } from "../../src/launcher/job-owners.js";
import type { Caller } from "../../src/launcher/port.js";
import { NodeService } from "../../src/launcher/service.js";
import type { LocalRunner } from "../../src/runner/index.js";

const alice: Caller = { user: "alice", groups: [], admin: false };
const bob: Caller = { user: "bob", groups: [], admin: false };
const root: Caller = { user: "root", groups: ["admins"], admin: true };

function stored(id: string, owner: string, user = "alice"): StoredJob {
  return { job: { id, user, command: "sleep 1" }, owner, user, ver: 1, files: [], launching: true };
}

function peer(id: string, over: Partial<NodeView> = {}): NodeView {
  return {
    id,
    host: id,
    ipv4: "10.0.0.2",
    port: "5559",
    lastSeen: "2024-01-01T00:00:00.000Z",
    status: "Online",
    online: true,
    runningJobs: 0,
    slots: 0,
    labels: {},
    queues: ["default"],
    ...over,
  };
}

/** A service on node-1 over an in-memory job table and node table; counts job reads. */
function setup() {
  const jobs = new Map<string, StoredJob>();
  const nodes = new Map<string, NodeView>();
  const reads: string[] = [];
  const store = {
    async get(id: string) {
      reads.push(id);
      return jobs.get(id);
    },
  } as unknown as JobStore;
  const registry = {
    async lookup(id: string) {
      return nodes.get(id);
    },
  } as unknown as Registry;
  const service = new NodeService(store, registry, {} as StatusBus, {} as JobManager, {} as LocalRunner, {
    nodeId: "node-1",
    resourcePollMs: 1000,
    isDraining: () => false,
    isClosing: () => false,
    redisConnected: () => true,
  });
  return { service, jobs, nodes, reads };
}

async function notFound(p: Promise<unknown>): Promise<void> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(ErrCode.JobNotFound);
}

describe("locate", () => {
  it("reads a job once, then answers from memory while its owner can be asked", async () => {
    const { service, jobs, nodes, reads } = setup();
    jobs.set("J", stored("J", "node-2"));
    nodes.set("node-2", peer("node-2"));
    const first = await service.locate(alice, "J");
    expect(first).toEqual({
      owner: "node-2",
      local: false,
      online: true,
      draining: false,
      baseUrl: "http://10.0.0.2:5559",
    });
    expect(await service.locate(alice, "J")).toEqual(first);
    expect(await service.locate(root, "J")).toEqual(first);
    expect(reads).toEqual(["J"]);
    // The owner's address comes from the node table each time (a restarted owner moves).
    nodes.set("node-2", peer("node-2", { ipv4: "10.0.0.9" }));
    expect((await service.locate(alice, "J")).baseUrl).toBe("http://10.0.0.9:5559");
    expect(reads).toEqual(["J"]);
  });

  it("a job hidden from the caller stays hidden, remembered or not", async () => {
    const { service, jobs, nodes } = setup();
    jobs.set("J", stored("J", "node-2"));
    nodes.set("node-2", peer("node-2"));
    await notFound(service.locate(bob, "J"));
    await service.locate(alice, "J");
    await notFound(service.locate(bob, "J"));
  });

  it("jobs of this node are local; the route reads the job itself", async () => {
    const { service, jobs, reads } = setup();
    jobs.set("L", stored("L", "node-1"));
    const local = { owner: "node-1", local: true, online: true, draining: false };
    expect(await service.locate(alice, "L")).toEqual(local);
    expect(await service.locate(alice, "L")).toEqual(local);
    expect(reads).toEqual(["L"]);
  });

  it("reads again when the owner is offline, draining or unknown: a deleted job is 404, not 503", async () => {
    const { service, jobs, nodes, reads } = setup();
    jobs.set("J", stored("J", "node-2"));
    nodes.set("node-2", peer("node-2"));
    await service.locate(alice, "J");

    nodes.set("node-2", peer("node-2", { online: false, status: "Offline" }));
    expect(await service.locate(alice, "J")).toMatchObject({ owner: "node-2", online: false });
    nodes.set("node-2", peer("node-2", { status: "Draining" }));
    expect(await service.locate(alice, "J")).toMatchObject({ owner: "node-2", draining: true });
    nodes.delete("node-2");
    expect(await service.locate(alice, "J")).toMatchObject({ owner: "node-2", online: false });
    expect(reads).toEqual(["J", "J", "J", "J"]);

    jobs.delete("J"); // expired while its owner was away
    await notFound(service.locate(alice, "J"));
  });

  it("a job that does not exist is read every time (nothing remembered)", async () => {
    const { service, reads } = setup();
    await notFound(service.locate(alice, "nope"));
    await notFound(service.locate(alice, "nope"));
    expect(reads).toEqual(["nope", "nope"]);
  });
});

describe("JobOwners", () => {
  it("holds at most maxEntries, dropping the oldest first", () => {
    const owners = new JobOwners(2);
    owners.remember("a", { owner: "n1", user: "u" });
    owners.remember("b", { owner: "n1", user: "u" });
    owners.remember("c", { owner: "n2", user: "u" });
    expect(owners.size).toBe(2);
    expect(owners.get("a")).toBeUndefined();
    expect(owners.get("b")).toEqual({ owner: "n1", user: "u" });
    expect(owners.get("c")).toEqual({ owner: "n2", user: "u" });
  });
});
