import { describe, expect, it } from "vitest";
import { type Node, NodeStatus, type NodeView, nodeOnline, onlineAt } from "../../src/api/node.js";

describe("NodeStatus", () => {
  it("has the fleet's status strings", () => {
    expect(NodeStatus).toEqual({ Online: "Online", Draining: "Draining", Offline: "Offline" });
  });
});

describe("nodeOnline (Go Node.Online, types_test.go)", () => {
  it.each([
    ["Online", true],
    ["Offline", false],
    ["unknown", false],
    ["", false],
    ["online", false],
    ["Draining", false],
  ])("%j → %s", (status, online) => {
    expect(nodeOnline({ status })).toBe(online);
  });
});

describe("onlineAt", () => {
  const seen = "2024-03-01T12:00:00.000Z";
  const seenMs = Date.parse(seen);
  const node: Node = { host: "a", ipv4: "10.0.0.1", port: "5559", lastSeen: seen, status: "Online" };

  it.each([
    ["just seen", 0, true],
    ["seen 2999 ms ago", 2999, true],
    ["seen exactly offlineAfter ago", 3000, false],
    ["seen long ago", 60_000, false],
    ["lastSeen slightly in the future (clock skew)", -500, true],
  ])("Online and %s → %s", (_label, ageMs, expected) => {
    expect(onlineAt(node, seenMs + ageMs, 3000)).toBe(expected);
  });

  it("requires status Online even with a fresh heartbeat", () => {
    expect(onlineAt({ ...node, status: "Draining" }, seenMs, 3000)).toBe(false);
    expect(onlineAt({ ...node, status: "online" }, seenMs, 3000)).toBe(false);
  });

  it("an unparsable or missing lastSeen is not online", () => {
    expect(onlineAt({ status: "Online", lastSeen: "yesterday" }, seenMs, 3000)).toBe(false);
    expect(onlineAt({ status: "Online", lastSeen: "" }, seenMs, 3000)).toBe(false);
    expect(onlineAt({ status: "Online" } as Node, seenMs, 3000)).toBe(false);
  });

  it("honours offsets in lastSeen", () => {
    expect(onlineAt({ status: "Online", lastSeen: "2024-03-01T13:00:00+01:00" }, seenMs + 10, 3000)).toBe(
      true,
    );
  });
});

describe("Node JSON", () => {
  it("has the seed's keys; NodeView adds id, online, runningJobs, slots, labels and queues", () => {
    const view: NodeView = {
      host: "a",
      ipv4: "10.0.0.1",
      port: "5559",
      lastSeen: "2024-03-01T12:00:00.000Z",
      status: "Online",
      id: "a-5559",
      online: true,
      runningJobs: 2,
      slots: 4,
      labels: { gpu: "a100" },
      queues: ["default"],
    };
    expect(Object.keys(JSON.parse(JSON.stringify(view))).sort()).toEqual(
      [
        "host",
        "ipv4",
        "port",
        "lastSeen",
        "status",
        "id",
        "online",
        "runningJobs",
        "slots",
        "labels",
        "queues",
      ].sort(),
    );
    expect(typeof view.port).toBe("string");
  });
});
