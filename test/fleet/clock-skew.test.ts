// Clock skew between hosts, at node level: two nodes run as child processes whose wall clock is
// minutes off (a preload module shifts Date, like faketime), next to an in-process node on the
// true clock. Liveness is judged on Redis time only, so nobody looks dead, nothing is settled
// early, job times are on the fleet's clock, and a real crash is still detected on time.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { api, FAST, startTestNode, type TestNode, testSettings, token, until } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import {
  adminRedis,
  nodesOf,
  type SpawnedNode,
  sleep,
  spawnNode,
  streamEvents,
  submit,
  tearDown,
  track,
  waitAllOnline,
  waitStatus,
} from "./helpers.js";

const SKEW_PRELOAD = `
const SKEW = Number(process.env.FLEET_TEST_CLOCK_SKEW_MS ?? 0);
const RealDate = globalThis.Date;
const realNow = RealDate.now.bind(RealDate);
globalThis.Date = new Proxy(RealDate, {
  construct(target, args, newTarget) {
    return Reflect.construct(target, args.length === 0 ? [realNow() + SKEW] : args, newTarget);
  },
  apply() {
    return new RealDate(realNow() + SKEW).toString();
  },
  get(target, prop, receiver) {
    if (prop === "now") return () => realNow() + SKEW;
    return Reflect.get(target, prop, receiver);
  },
});
`;

const children: SpawnedNode[] = [];
const nodes: TestNode[] = [];
const pids: number[] = [];
let redis: Redis | undefined;

afterAll(() => tearDown({ children, pids, nodes: [nodes], redis }));

/** The wall clock a child node believes in, from the `time` of its first log line. */
function loggedClockOffset(output: string, loggedAround: number): number {
  const m = /"time":"([^"]+)"/.exec(output);
  if (!m) throw new Error(`no log line with a time in: ${output.slice(0, 500)}`);
  return Date.parse(m[1]!) - loggedAround;
}

describe("clock skew between nodes", () => {
  it("nodes minutes ahead and behind see each other Online, settle nothing early, and still detect a crash", async () => {
    const prefix = uniquePrefix("fleet-skew");
    redis = adminRedis(redisUrl());
    const dir = mkdtempSync(join(tmpdir(), "fleet-skew-"));
    const preload = join(dir, "skew.mjs");
    writeFileSync(preload, SKEW_PRELOAD);
    const skewed = (ms: number) => ({
      env: {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${pathToFileURL(preload).href}`.trim(),
        FLEET_TEST_CLOCK_SKEW_MS: String(ms),
        LAUNCHER_LOG_LEVEL: "info",
      },
    });
    const AHEAD = 7 * 60_000;
    const BEHIND = -5 * 60_000;
    const startedAt = Date.now();
    const [b, c, d] = await Promise.all([
      track(startTestNode(prefix), nodes),
      track(spawnNode(testSettings(prefix), skewed(AHEAD)), children),
      track(spawnNode(testSettings(prefix), skewed(BEHIND)), children),
    ]);
    // The children really live in another time (their own log lines say so).
    expect(Math.abs(loggedClockOffset(c.output(), startedAt) - AHEAD)).toBeLessThan(60_000);
    expect(Math.abs(loggedClockOffset(d.output(), startedAt) - BEHIND)).toBeLessThan(60_000);

    const all = [b.url, c.url, d.url];
    const ids = [b.settings.nodeId, c.settings.nodeId, d.settings.nodeId];
    await waitAllOnline(all, ids);
    for (const url of all) {
      for (const v of await nodesOf(url)) {
        expect(Math.abs(Date.parse(v.lastSeen) - Date.now())).toBeLessThan(5_000); // Redis time, not the host's
      }
    }

    // Jobs get the fleet's time, whatever the clock of the host that accepted them.
    const tok = await token("sked");
    const onC = await submit(c.url, tok, { command: "sleep 60" });
    const onD = await submit(d.url, tok, { command: "sleep 60" });
    for (const [url, id] of [
      [c.url, onC],
      [d.url, onD],
    ] as const) {
      const job = await waitStatus(b.url, tok, id, "Running");
      pids.push(job.pid as number);
      expect(Math.abs(Date.parse(String(job.submissionTime)) - Date.now())).toBeLessThan(5_000);
      expect(Math.abs(Date.parse(String(job.lastUpdateTime)) - Date.now())).toBeLessThan(5_000);
      // A time-window listing from a node with another clock finds it.
      const from = new Date(Date.now() - 60_000).toISOString();
      const to = new Date(Date.now() + 60_000).toISOString();
      const listed = await api<{ jobs: { id: string }[] }>(
        url === c.url ? d.url : c.url,
        "GET",
        `/jobs?startTime=${from}&endTime=${to}`,
        {
          token: tok,
        },
      );
      expect(listed.body.jobs.map((j) => j.id)).toContain(id);
    }

    // Longer than LOST_AFTER: nobody was declared lost, nothing was settled.
    await sleep(FAST.lostAfterMs + 1_000);
    // (Online is re-checked with a deadline: on a loaded machine one heartbeat may be a little late.)
    await waitAllOnline(all, ids, 5_000);
    for (const id of ids) expect(await redis.hget(`${prefix}:node:${id}`, "status")).toBe("Online");
    for (const id of [onC, onD])
      expect((await api(b.url, "GET", `/jobs/${id}`, { token: tok })).body.status).toBe("Running");
    expect((await streamEvents(redis, prefix)).filter((e) => e.status === "Failed")).toEqual([]);
    for (const id of ids) expect(await redis.hget(`${prefix}:node:${id}`, "settledEpoch")).toBeNull();

    // The node whose clock is behind crashes: the others (one ahead, one on time) notice on time…
    await d.stop("SIGKILL");
    const killedAt = Date.now();
    const deadline = FAST.offlineAfterMs + FAST.heartbeatMs + 1_500;
    await until(
      async () => {
        for (const url of [b.url, c.url]) {
          if ((await nodesOf(url)).find((v) => v.id === d.settings.nodeId)?.online !== false) return false;
        }
        return true;
      },
      { timeoutMs: deadline, everyMs: 10 },
    );
    expect(Date.now() - killedAt).toBeLessThanOrEqual(deadline);
    // …and settle its job after LOST_AFTER of silence on Redis's clock, not earlier, not minutes late.
    const failed = await waitStatus(c.url, tok, onD, "Failed", FAST.lostAfterMs + 5_000);
    const lost = /no heartbeat for (\d+) s/.exec(String(failed.statusMessage));
    expect(lost).not.toBeNull();
    expect(Number(lost![1])).toBeLessThan(10);
    const lastSeen = Number(await redis.zscore(`${prefix}:nodes`, d.settings.nodeId));
    const settle = (await streamEvents(redis, prefix)).find((e) => e.id === onD && e.status === "Failed")!;
    expect(Number(settle.eventId.split("-")[0]) - lastSeen).toBeGreaterThanOrEqual(FAST.lostAfterMs);
    // The node on the fast clock is still Online and its job untouched.
    expect((await api(b.url, "GET", `/jobs/${onC}`, { token: tok })).body.status).toBe("Running");
    expect((await nodesOf(b.url)).find((v) => v.id === c.settings.nodeId)?.online).toBe(true);
  }, 60_000);
});
