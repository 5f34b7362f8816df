// Refusing a job nobody can run (src/launcher/placement.ts): a 400 only when the fleet is up and no
// known node, online or not, serves its queue with its labels; while no node is online to tell (the
// registry view empty as a node starts, or every record stale for a moment) a 503 to repeat
// (docs/reliability.md, bug 7). The unit cases, then a real node on a real Redis whose view has gone
// stale.
import { afterEach, describe, expect, it } from "vitest";
import { ApiError, ErrCode, type NodeView } from "../../src/api/index.js";
import { checkPlaceable, type FleetView, placementRefusal } from "../../src/launcher/placement.js";
import { api, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";

type Seen = Pick<NodeView, "queues" | "labels" | "online">;
const node = (queues: string[], online: boolean, labels: Record<string, string> = {}): Seen => ({
  queues,
  labels,
  online,
});

describe("placementRefusal", () => {
  it("a job some known node could run is accepted, online or not (it may wait in the fleet queue)", () => {
    expect(placementRefusal([node(["default"], true)], ["default"], undefined)).toBeUndefined();
    expect(
      placementRefusal([node(["gpu"], false, { gpu: "a100" })], ["gpu"], [{ name: "gpu" }]),
    ).toBeUndefined();
    expect(placementRefusal([node(["a"], false), node(["b"], true)], ["a"], undefined)).toBeUndefined();
  });

  it("the fleet is up and no known node serves it: 400 naming the field", () => {
    const fleet = [node(["default"], true, { zone: "a" }), node(["gpu"], false)];
    const queues = placementRefusal(fleet, ["nope"], undefined);
    expect(queues).toBeInstanceOf(ApiError);
    expect(queues?.code).toBe(ErrCode.InvalidRequest);
    expect(queues?.message).toBe('queues: no node of the fleet serves "nope" (queues served: default, gpu)');
    const labels = placementRefusal(fleet, ["default"], [{ name: "zone", value: "b" }]);
    expect(labels?.code).toBe(ErrCode.InvalidRequest);
    expect(labels?.message).toBe(
      "placementConstraints: no node serving the job's queue has the labels zone=b",
    );
  });

  it("every queue named must be served by a known node: free names would be a new class each", () => {
    const fleet = [node(["default"], true), node(["gpu"], false)];
    expect(placementRefusal(fleet, ["default", "gpu"], undefined)).toBeUndefined();
    const extra = placementRefusal(fleet, ["default", "x1"], undefined);
    expect(extra?.code).toBe(ErrCode.InvalidRequest);
    expect(extra?.message).toBe('queues: no node of the fleet serves "x1" (queues served: default, gpu)');
    expect(placementRefusal([node(["default"], false)], ["default", "x1"], undefined)?.code).toBe(
      ErrCode.PluginRestarted,
    );
  });

  it("no node online to tell (an empty view, every record stale): 503 PluginRestarted, try again", () => {
    for (const fleet of [[], [node(["gpu"], false)], [node(["default"], false, { zone: "a" })]]) {
      const refusal = placementRefusal(fleet, ["default"], [{ name: "zone", value: "b" }]);
      expect(refusal?.code, JSON.stringify(fleet)).toBe(ErrCode.PluginRestarted);
      expect(refusal?.message).toMatch(/no node is up to serve queue "default".*; try again$/);
    }
    expect(placementRefusal([], ["default"], undefined)?.message).toBe(
      'queues: no node is up to serve queue "default" (no node of the fleet is online now); try again',
    );
  });
});

describe("checkPlaceable", () => {
  it("a refusal never rests on the cache: it is judged again on a fresh read", async () => {
    let fresh = 0;
    const view = (cached: Seen[], read: Seen[]): FleetView => ({
      placementNodes: () => cached,
      listNodes: async () => {
        fresh++;
        return read;
      },
    });
    // The cache accepts: no read.
    await checkPlaceable(view([node(["default"], false)], []), ["default"], undefined);
    expect(fresh).toBe(0);
    // The cache is empty (the node just started); the fresh read has the node.
    await checkPlaceable(view([], [node(["default"], true)]), ["default"], undefined);
    expect(fresh).toBe(1);
    // Empty both times: 503, not the 400 of bug 7.
    await expect(checkPlaceable(view([], []), ["default"], undefined)).rejects.toMatchObject({
      code: ErrCode.PluginRestarted,
    });
    await expect(
      checkPlaceable(view([], [node(["other"], true)]), ["default"], undefined),
    ).rejects.toMatchObject({ code: ErrCode.InvalidRequest });
  });
});

let nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
});

describe("on a node whose view of the fleet has gone stale", () => {
  it("a queue it cannot see served is a 503 to repeat, not a 400; a known queue is still accepted", async () => {
    // One heartbeat a minute: after OFFLINE_AFTER the node's own record is stale, and it is the
    // whole fleet: every node's record stale, as in the chaos run.
    const n = await startTestNode(uniquePrefix("place-stale"), {
      heartbeatMs: 60_000,
      offlineAfterMs: 300,
      lostAfterMs: 600_000,
    });
    nodes.push(n);
    const tok = await token("alice");
    await until(async () => {
      const r = await api<{ nodes: { online: boolean }[] }>(n.url, "GET", "/nodes", { token: tok });
      return r.status === 200 && r.body.nodes.length === 1 && r.body.nodes.every((v) => !v.online);
    });
    const unknown = await api<Record<string, unknown>>(n.url, "POST", "/jobs", {
      token: tok,
      body: { command: "true", queues: ["nope"] },
    });
    expect(unknown.status).toBe(503);
    expect(unknown.body).toMatchObject({ code: 4, name: "PluginRestarted" });
    expect(String(unknown.body.message)).toMatch(/^queues: no node is up to serve queue "nope".*try again$/);
    const known = await api<Record<string, unknown>>(n.url, "POST", "/jobs", {
      token: tok,
      body: { command: "true" },
    });
    expect(known.status).toBe(201);
  });

  it("with a live fleet, a queue no node serves is still a 400", async () => {
    const n = await startTestNode(uniquePrefix("place-live"), { offlineAfterMs: 5_000, lostAfterMs: 20_000 });
    nodes.push(n);
    const tok = await token("alice");
    const r = await api<Record<string, unknown>>(n.url, "POST", "/jobs", {
      token: tok,
      body: { command: "true", queues: ["nope"] },
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      code: 2,
      message: 'queues: no node of the fleet serves "nope" (queues served: default)',
    });
  });
});
