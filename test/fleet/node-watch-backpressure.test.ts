// `GET /nodes?watch=1` is pulled by its writer (src/http/streams.ts waits for `drain` before it asks
// the service for the next message; NodeService.watchNodes coalesces wakes and sends each node's
// latest view): a client that never reads holds at most the response's buffer and one message on
// the node, however many changes happen, and when it reads again it gets the latest state, not
// every intermediate one. Asserted on the response's buffered length, not on timing.
import type { ServerResponse } from "node:http";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { fleetKeys } from "../../src/cluster/keys.js";
import { startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import { rawConnect } from "../http/raw-http.js";

let node: TestNode | undefined;
let redis: Redis | undefined;
afterEach(async () => {
  await node?.close();
  redis?.disconnect();
  node = undefined;
  redis = undefined;
});

const CHANGES = 400;
const LABEL_BYTES = 64 * 1024;

describe("GET /nodes?watch=1 with a client that does not read", () => {
  it("holds a bounded buffer while many node changes happen, then sends the latest state", async () => {
    const prefix = uniquePrefix("watch-bp");
    node = await startTestNode(prefix, { offlineAfterMs: 5_000, lostAfterMs: 20_000 });
    const keys = fleetKeys(prefix);
    redis = new Redis(redisUrl());
    let watchRes: ServerResponse | undefined;
    node.node.app.server.prependListener("request", (req, res) => {
      if (req.url?.startsWith("/nodes?watch")) watchRes = res;
    });

    // A ghost node whose record changes CHANGES times, each view ~64 KiB (25 MiB in all: more than
    // the kernel's socket buffers take).
    const ghost = "ghost-node";
    const big = "x".repeat(LABEL_BYTES);
    const setLabel = async (i: number) => {
      await redis!.hset(keys.node(ghost), "labels", JSON.stringify({ big: `${big}-${i}` }));
      await redis!.publish(keys.nodesChannel, ghost);
    };
    await redis.hset(keys.node(ghost), {
      host: "ghost",
      ipv4: "192.0.2.1",
      port: "1",
      status: "Online",
      slots: "0",
      queues: JSON.stringify(["ghost"]),
      labels: "{}",
      epoch: "1",
    });
    await redis.zadd(keys.nodes, Date.now(), ghost);
    await redis.publish(keys.nodesChannel, ghost);

    const socket = await rawConnect(node.url); // paused: nothing is read until resumed below
    socket.write(
      `GET /nodes?watch=1 HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${await token("watcher")}\r\n\r\n`,
    );
    await until(() => watchRes !== undefined);
    const res = watchRes!;
    const bound = res.writableHighWaterMark + 2 * (LABEL_BYTES + 4096);
    let most = 0;
    for (let i = 0; i < CHANGES; i++) {
      await setLabel(i);
      most = Math.max(most, res.writableLength);
    }
    // The node has read the last change, and the writer is stuck behind the client.
    await until(async () => {
      const labels = await redis!.hget(keys.node(ghost), "labels");
      return labels?.endsWith(`-${CHANGES - 1}"}`) && res.writableLength > 0;
    });
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, res.writableLength);
      await new Promise((r) => setImmediate(r));
    }
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(bound);

    // Reading again: the latest label arrives, and fewer ghost messages than changes (the
    // intermediate states were never queued).
    let text = "";
    let ghostMessages = 0;
    const last = `-${CHANGES - 1}"`;
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      let nl = text.indexOf("\n");
      while (nl >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        if (line.includes('"ghost-node"') && line.includes('"node":')) ghostMessages++;
        if (line.includes(last)) socket.emit("latest");
        nl = text.indexOf("\n");
      }
    });
    const latest = new Promise((r) => socket.once("latest", r));
    socket.resume();
    await latest;
    socket.destroy();
    expect(ghostMessages).toBeLessThan(CHANGES);
  }, 60_000);
});
