// A client that stops reading costs a node no more than LAUNCHER_STREAM_BUFFER_BYTES (docs/http-api.md
// "Limits"). A real node process (`node dist/cli.js node`, default 4 MiB) serves a `*` status stream
// to a raw socket that sends its request and never reads, while ~130 MB of status events flow
// through the fleet. The node's resident memory (VmRSS from /proc) is sampled throughout: it must
// stay within a bound far below what holding those events would take, and the node must end the
// stream itself, with a final error line, which the client finds once it does read.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventFlood, FLOOD_EVENT_BYTES } from "../helpers/flood.js";
import { type ChildNode, readStream, startChildNode, testSettings, token, until } from "../helpers/nodes.js";
import { redisClient, uniquePrefix } from "../helpers/redis.js";
import { jsonLines, parseResponse, rawConnect, readToEnd } from "../http/raw-http.js";

/** Events sent while the client is not reading: ~130 MB as stream lines. */
const FLOOD_EVENTS = 60_000;
const BATCH = 500;
/**
 * Growth of the node's RSS allowed over its warmed-up baseline: the 4 MiB buffer, plus room for
 * V8's garbage between collections (~130 MB of events are parsed meanwhile). Holding the events
 * instead would take well over 130 MB.
 */
const RSS_GROWTH_BOUND = 64 * 1024 * 1024;

let node: ChildNode;
let admin: string;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? Number.NaN);
}
const openStatusStreams = (url: string) => metric(url, /^launcher_open_streams\{kind="status"\} (\d+)/m);
/** Status events the node's bus has taken in (delivered or passed over). */
const eventsTaken = (url: string) => metric(url, /^launcher_status_events_delivered (\d+)/m);

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

beforeAll(async () => {
  node = await startChildNode(testSettings(uniquePrefix("stream-memory")));
  admin = await token("ops", { admin: true });
});
afterAll(async () => {
  await node?.stop("SIGKILL");
});

describe("a client that stops reading", () => {
  it("costs the node no more than the stream buffer, and the node ends its stream", async () => {
    const pid = node.proc.pid!;
    const redis = redisClient();
    const flood = new EventFlood(redis, node.settings.keyPrefix, { retention: 2_000 });
    try {
      // Warm up with a client that reads (paced: it shares this process with the flood, and a
      // reader more than 4 MiB behind would be cut off): code compiled, heap at its working size.
      let seen = 0;
      const warm = readStream<{ id?: string }>(node.url, "/jobs/*/status", {
        token: admin,
        until: (m) => {
          seen = Number(String(m.id).replace("flood-", "")) || seen;
          return seen === 10_000;
        },
        timeoutMs: 120_000,
      });
      await until(async () => (await openStatusStreams(node.url)) === 1);
      for (let i = 0; i < 10_000; i += BATCH) {
        await flood.emit(BATCH);
        await until(() => seen >= flood.emitted - BATCH, { timeoutMs: 30_000 });
      }
      expect((await warm).messages.at(-1)?.id).toBe("flood-10000");
      await until(async () => (await openStatusStreams(node.url)) === 0);
      const baseline = rssBytes(pid);

      // The client that never reads.
      const socket = await rawConnect(node.url);
      socket.pause();
      socket.write(`GET /jobs/*/status HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${admin}\r\n\r\n`);
      await until(async () => (await openStatusStreams(node.url)) === 1);

      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssBytes(pid));
      }, 20);
      let endedAfter = 0;
      let response: Promise<Buffer> | undefined;
      try {
        for (let sent = 0; sent < FLOOD_EVENTS; sent += BATCH) {
          await flood.emit(BATCH);
          // Paced by the node (at most one batch ahead of it), so every event really
          // passes through it while the client is connected, and Redis never drops it as a slow
          // subscriber.
          await until(async () => (await eventsTaken(node.url)) >= flood.emitted - BATCH, {
            timeoutMs: 30_000,
          });
          peak = Math.max(peak, rssBytes(pid));
          if (endedAfter === 0 && (await openStatusStreams(node.url)) === 0) {
            endedAfter = sent + BATCH;
            // The stream is over: the client reads what it was sent before the node's grace for an
            // ended stream's last bytes (10 s) runs out, while the flood goes on.
            response = readToEnd(socket);
          }
        }
        await until(async () => (await openStatusStreams(node.url)) === 0, { timeoutMs: 10_000 });
        // Until the node has taken in every event (the sampler keeps running meanwhile).
        await until(async () => (await eventsTaken(node.url)) >= flood.emitted, { timeoutMs: 60_000 });
      } finally {
        clearInterval(sampler);
      }
      const growth = peak - baseline;
      console.log(
        `node RSS: baseline ${mb(baseline)}, peak ${mb(peak)} (+${mb(growth)}) while ` +
          `${FLOOD_EVENTS} events (~${mb(FLOOD_EVENTS * FLOOD_EVENT_BYTES)}) flowed; the stream ` +
          `ended after ${endedAfter || "?"} of them; now ${mb(rssBytes(pid))}`,
      );
      expect(growth).toBeLessThan(RSS_GROWTH_BOUND);
      expect(endedAfter).toBeGreaterThan(0);
      expect(endedAfter).toBeLessThan(FLOOD_EVENTS);

      // What the client read: the events it was sent, in order, then the final line, then the close.
      const res = parseResponse(await response!);
      const lines = jsonLines(res.body);
      const ids = lines.slice(0, -1).map((l) => Number(String(l.id).replace("flood-", "")));
      expect(ids).toEqual(ids.map((_, i) => 10_001 + i));
      expect(lines.at(-1)).toMatchObject({ error: { code: 5, name: "Timeout" } });
      const before = lines.at(-2) as { eventId: string };
      expect((lines.at(-1) as { error: { message: string } }).error.message).toContain(
        `?since=${before.eventId}`,
      );
    } finally {
      redis.disconnect();
    }
  }, 240_000);
});
