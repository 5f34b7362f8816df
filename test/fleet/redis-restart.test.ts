// Redis restarts mid-run (a dedicated redis-server with AOF persistence), and stays away longer
// than LOST_AFTER: every node recovers by itself, readiness is off while Redis is away and on
// again after, requests fail fast meanwhile, and nothing acknowledged is lost — including the
// exit of a job that ended while Redis was down.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { api, readStream, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { type RedisServer, removeRedisDir, startRedis } from "../helpers/redis-server.js";
import {
  adminRedis,
  alive,
  collect,
  control,
  getJob,
  nodesOf,
  type StatusMsg,
  sleep,
  startFleet,
  streamEvents,
  submit,
  TcpProxy,
  tearDown,
  track,
  waitAllOnline,
  waitStatus,
} from "./helpers.js";

/** Longer than FAST's 2 s, so the margins below hold on a busy machine. */
const LOST_AFTER_MS = 3_000;

let server: RedisServer | undefined;
let fleet: TestNode[] = [];
let redis: Redis | undefined;
let proxy: TcpProxy | undefined;
const pids: number[] = [];
const figures: Record<string, number> = {};

afterAll(async () => {
  await tearDown({ figures: ["redis restart", figures], pids, nodes: [fleet], redis });
  await proxy?.close();
  if (server) {
    await server.stop();
    removeRedisDir(server);
  }
});

async function readyz(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`)).status;
}

describe("a Redis restart mid-run", () => {
  it("every node recovers by itself and nothing acknowledged is lost", async () => {
    server = await startRedis({ persistence: true });
    const prefix = uniquePrefix("fleet-redis");
    // C reaches Redis through a proxy, so it can come back a little later than A and B.
    proxy = await TcpProxy.start(server.port);
    const timings = { offlineAfterMs: 1_000, lostAfterMs: LOST_AFTER_MS };
    const [direct, c] = await Promise.all([
      startFleet(prefix, 2, { redisUrl: server.url, ...timings }).then((f) => {
        fleet.push(...f);
        return f;
      }),
      track(startTestNode(prefix, { redisUrl: proxy.url, ...timings }), fleet),
    ]);
    fleet = [...direct, c];
    const [a, b] = direct as [TestNode, TestNode];
    await waitAllOnline(
      fleet.map((n) => n.url),
      fleet.map((n) => n.settings.nodeId),
    );
    redis = adminRedis(server.url);
    const tok = await token("rita");
    const dir = mkdtempSync(join(tmpdir(), "fleet-gates-"));
    const gate = (name: string) => `while [ ! -e ${join(dir, name)} ]; do sleep 0.05; done`;

    const done = await submit(a.url, tok, { command: "exit 0", name: "done" });
    const running = await submit(b.url, tok, { command: "sleep 60", name: "running" });
    const during = await submit(a.url, tok, { command: `${gate("during")}; exit 9`, name: "ends-during" });
    const after = await submit(c.url, tok, { command: `${gate("after")}; exit 11`, name: "ends-after" });
    await waitStatus(b.url, tok, done, "Finished");
    const runningPid = (await waitStatus(a.url, tok, running, "Running")).pid as number;
    const duringPid = (await waitStatus(a.url, tok, during, "Running")).pid as number;
    pids.push(runningPid, duringPid, (await waitStatus(a.url, tok, after, "Running")).pid as number);
    const recordsBefore = await Promise.all(
      fleet.map((n) => redis!.hgetall(`${prefix}:node:${n.settings.nodeId}`)),
    );

    // Two clients: one stays connected through the restart (one-job stream on B), one (every job,
    // on C) disconnects before it and resumes afterwards on A with its last eventId.
    const through = readStream<StatusMsg>(b.url, `/jobs/${during}/status`, { token: tok, timeoutMs: 30_000 });
    const before = collect<StatusMsg>(c.url, "/jobs/*/status", tok);
    expect(await before.opened).toBe(200);
    await until(() => before.messages.length >= 4);
    const firstPart = await before.stop();
    const lastSeen = firstPart.at(-1)!.eventId;

    await server.stop();
    proxy.cut();
    const downAt = Date.now();

    // Readiness off everywhere, at once.
    await until(async () => (await Promise.all(fleet.map((n) => readyz(n.url)))).every((s) => s === 503), {
      timeoutMs: 5_000,
      everyMs: 10,
    });
    figures.readyz503AfterStop = Date.now() - downAt;
    // Requests that need Redis fail fast with 503 code 4.
    const requests: [TestNode, string, string, unknown?][] = [
      [a, "POST", "/jobs", { command: "true" }],
      [b, "GET", `/jobs/${running}`],
      [c, "GET", "/jobs"],
      [c, "POST", `/jobs/${running}/control`, { operation: "suspend" }],
      [a, "GET", `/jobs/${running}/status`],
      [b, "GET", `/jobs/${running}/output`],
    ];
    let slowest = 0;
    for (const [n, method, path, body] of requests) {
      const t = Date.now();
      const r = await api(n.url, method, path, { token: tok, ...(body ? { body } : {}) });
      slowest = Math.max(slowest, Date.now() - t);
      expect(r.status, `${method} ${path}`).toBe(503);
      expect(r.body, `${method} ${path}`).toMatchObject({ code: 4, name: "PluginRestarted" });
    }
    figures.slowest503WhileDown = slowest;
    expect(slowest).toBeLessThan(2_500);

    // A job ends while Redis is away; its exit must still be recorded.
    writeFileSync(join(dir, "during"), "");
    await until(() => !alive(duringPid), { timeoutMs: 5_000 });
    // Stay away longer than LOST_AFTER: a restart that long must not make nodes declare each other lost.
    await sleep(Math.max(0, LOST_AFTER_MS + 500 - (Date.now() - downAt)));
    expect((await Promise.all(fleet.map((n) => readyz(n.url)))).every((s) => s === 503)).toBe(true);

    await server.restart();
    const upAt = Date.now();
    figures.redisDownFor = upAt - downAt;
    // A and B are back first; C's path to Redis opens only then (it returns well within LOST_AFTER
    // of A's and B's return, so nobody may declare it lost).
    await until(async () => (await readyz(a.url)) === 200 && (await readyz(b.url)) === 200, {
      timeoutMs: 15_000,
      everyMs: 20,
    });
    figures.abReadyAfterRestart = Date.now() - upAt;
    proxy.heal();
    await until(async () => (await Promise.all(fleet.map((n) => readyz(n.url)))).every((s) => s === 200), {
      timeoutMs: 15_000,
      everyMs: 20,
    });
    figures.allReadyAfterRestart = Date.now() - upAt;
    await until(async () => {
      for (const n of fleet) {
        const views = await nodesOf(n.url);
        if (views.length !== 3 || !views.every((v) => v.online)) return false;
      }
      return true;
    });

    // Nothing acknowledged before the restart is lost; the job that ended meanwhile has its real code.
    expect((await getJob(c.url, tok, done)).status).toBe("Finished");
    expect(await getJob(b.url, tok, running)).toMatchObject({ status: "Running", pid: runningPid });
    expect(alive(runningPid)).toBe(true);
    const duringJob = await waitStatus(c.url, tok, during, "Finished", 10_000);
    figures.exitRecordedAfterRestart = Date.now() - upAt;
    expect(duringJob.exitCode).toBe(9);
    // The stream that stayed connected on B saw it end.
    const stayed = await through;
    expect(stayed.ended).toBe(true);
    expect(stayed.messages.at(-1)).toMatchObject({ id: during, status: "Finished" });
    expect(stayed.messages.some((m) => m.error)).toBe(false);

    writeFileSync(join(dir, "after"), "");
    expect((await waitStatus(a.url, tok, after, "Finished")).exitCode).toBe(11);

    // The client that left before the restart resumes on A: everything after its last event, once.
    const resumed = await readStream<StatusMsg>(a.url, `/jobs/*/status?since=${lastSeen}`, {
      token: tok,
      until: (m) => m.id === after && m.status === "Finished",
    });
    expect(resumed.messages.some((m) => m.resync || m.error)).toBe(false);
    const truth = (await streamEvents(redis, prefix)).map((e) => e.eventId);
    const want = truth.slice(truth.indexOf(lastSeen) + 1);
    expect(resumed.messages.map((m) => m.eventId)).toEqual(want);
    expect(resumed.messages.filter((m) => m.status === "Finished").map((m) => m.id)).toEqual([during, after]);

    // No node was declared lost or fenced: same epochs, nothing settled, nothing Failed.
    const recordsAfter = await Promise.all(
      fleet.map((n) => redis!.hgetall(`${prefix}:node:${n.settings.nodeId}`)),
    );
    recordsAfter.forEach((r, i) => {
      expect(r.epoch).toBe(recordsBefore[i]!.epoch);
      expect(r.settledEpoch).toBeUndefined();
      expect(r.status).toBe("Online");
    });
    expect((await streamEvents(redis, prefix)).filter((e) => e.status === "Failed")).toEqual([]);

    // And the fleet works as before: control through C reaches the job on B.
    expect((await control(c.url, tok, running, "stop")).status).toBe(200);
    expect((await waitStatus(a.url, tok, running, "Finished")).exitCode).toBe(143);
  }, 60_000);
});
