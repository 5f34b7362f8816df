// A node crashes (a real child process, SIGKILL): peers stop calling it Online within
// OFFLINE_AFTER + one heartbeat, its jobs stay readable, owner-only requests fail fast with 503
// code 4 naming it, and after LOST_AFTER its unfinished jobs are Failed exactly once, however
// many survivors race to settle them.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  api,
  type ChildNode,
  FAST,
  startTestNode,
  type TestNode,
  testSettings,
  token,
  until,
} from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import {
  adminRedis,
  alive,
  type Collector,
  collect,
  nodeView,
  type StatusMsg,
  spawnNode,
  startFleet,
  streamEvents,
  submit,
  tearDown,
  track,
  waitAllOnline,
  waitStatus,
} from "./helpers.js";

let redis: Redis;
const fleets: TestNode[][] = [];
const children: ChildNode[] = [];
const pids: number[] = [];

beforeAll(() => {
  redis = adminRedis(redisUrl());
});

/** Measured figures, printed once at the end for the report. */
const figures: Record<string, number> = {};
afterAll(() => tearDown({ figures: ["crash", figures], children, pids, nodes: fleets, redis }));

async function ownerOnlyFails(url: string, tok: string, id: string, nodeId: string): Promise<number> {
  const requests: [string, string, unknown?][] = [
    ["POST", `/jobs/${id}/control`, { operation: "suspend" }],
    ["GET", `/jobs/${id}/output`],
    ["GET", `/jobs/${id}/network`],
    ["GET", `/jobs/${id}/resource-util`],
  ];
  let slowest = 0;
  for (const [method, path, body] of requests) {
    const t = Date.now();
    const r = await api(url, method, path, { token: tok, ...(body ? { body } : {}) });
    const took = Date.now() - t;
    slowest = Math.max(slowest, took);
    expect(r.status, `${method} ${path}`).toBe(503);
    expect(r.body).toMatchObject({ code: 4, name: "PluginRestarted" });
    expect(String(r.body.message)).toContain(nodeId);
    expect(took, `${method} ${path} took ${took} ms`).toBeLessThan(2_500);
  }
  return slowest;
}

function failedCounts(messages: StatusMsg[], ids: string[]): number[] {
  return ids.map((id) => messages.filter((m) => m.id === id && m.status === "Failed").length);
}

interface Scenario {
  prefix: string;
  survivors: TestNode[];
  a: ChildNode;
}

/** A fleet of `survivorCount` in-process nodes plus node A as a child process. */
async function setUp(survivorCount: number): Promise<Scenario> {
  const prefix = uniquePrefix(`fleet-crash${survivorCount}`);
  const [survivors, a] = await Promise.all([
    track(startFleet(prefix, survivorCount), fleets),
    track(spawnNode(testSettings(prefix)), children),
  ]);
  return { prefix, survivors, a };
}

// Child nodes take seconds to boot on a busy machine: both scenarios boot together.
let scenarios: Promise<[Scenario, Scenario]>;
beforeAll(() => {
  scenarios = Promise.all([setUp(2), setUp(3)]);
  scenarios.catch(() => undefined);
});

async function crashScenario(scenario: Scenario, restartAfter: boolean): Promise<void> {
  const { prefix, survivors, a } = scenario;
  const survivorCount = survivors.length;
  const aId = a.settings.nodeId;
  await waitAllOnline(
    [a.url, ...survivors.map((s) => s.url)],
    [aId, ...survivors.map((s) => s.settings.nodeId)],
  );
  const [b, c] = survivors as [TestNode, TestNode];
  const [tok, admin] = await Promise.all([token("carol"), token("ops", { admin: true })]);

  const j1 = await submit(a.url, tok, { command: "sleep 60", name: "long-1" });
  const j2 = await submit(a.url, tok, { command: "sleep 60", name: "long-2" });
  const j3 = await submit(a.url, tok, { command: "exit 3", name: "short" });
  const pid1 = (await waitStatus(b.url, tok, j1, "Running")).pid as number;
  const pid2 = (await waitStatus(b.url, tok, j2, "Running")).pid as number;
  pids.push(pid1, pid2);
  expect((await waitStatus(b.url, tok, j3, "Finished")).exitCode).toBe(3);

  // Every survivor streams every status change from before the crash on.
  const streams: Collector<StatusMsg>[] = survivors.map((s) =>
    collect<StatusMsg>(s.url, "/jobs/*/status", admin),
  );
  for (const s of streams) expect(await s.opened).toBe(200);

  expect(await a.stop("SIGKILL")).toBe("SIGKILL");
  const killedAt = Date.now();

  // At once: A's jobs read fine through B; owner-only requests fail fast, naming A.
  expect((await api(b.url, "GET", `/jobs/${j1}`, { token: tok })).body).toMatchObject({
    id: j1,
    status: "Running",
  });
  figures[`ownerOnly503BeforeOfflineSlowest_${survivorCount}`] = await ownerOnlyFails(b.url, tok, j1, aId);

  // Not Online within OFFLINE_AFTER + one heartbeat (+ slack for a loaded machine), on every survivor.
  const deadline = FAST.offlineAfterMs + FAST.heartbeatMs + 1_500;
  await until(
    async () => {
      for (const s of survivors) if ((await nodeView(s.url, aId))?.online !== false) return false;
      return true;
    },
    { timeoutMs: deadline - (Date.now() - killedAt), everyMs: 10 },
  );
  const offlineAfter = Date.now() - killedAt;
  figures[`onlineFalseAfterKill_${survivorCount}`] = offlineAfter;
  expect(offlineAfter).toBeLessThanOrEqual(deadline);

  // Still before LOST_AFTER: reads fine, owner-only 503 ("offline"), jobs not settled yet.
  for (const s of survivors) {
    const r = await api(s.url, "GET", `/jobs/${j2}`, { token: tok });
    expect(r.body).toMatchObject({ id: j2, status: "Running" });
  }
  figures[`ownerOnly503AfterOfflineSlowest_${survivorCount}`] = await ownerOnlyFails(c.url, tok, j2, aId);

  // After LOST_AFTER: settled as Failed, with a message naming A.
  for (const id of [j1, j2]) {
    const failed = await waitStatus(c.url, tok, id, "Failed", FAST.lostAfterMs + 5_000);
    expect(String(failed.statusMessage)).toContain(aId);
  }
  const failedAfter = Date.now() - killedAt;
  figures[`failedAfterKill_${survivorCount}`] = failedAfter;
  expect((await api(b.url, "GET", `/jobs/${j3}`, { token: tok })).body).toMatchObject({
    status: "Finished",
    exitCode: 3,
  });

  figures[`checksDone_${survivorCount}`] = Date.now() - killedAt;
  // Let every survivor try to settle a few more times, then count.
  await new Promise((r) => setTimeout(r, 10 * FAST.heartbeatMs));
  for (const s of streams) {
    const messages = await s.stop();
    expect(messages.some((m) => m.error || m.resync)).toBe(false);
    expect(failedCounts(messages, [j1, j2, j3])).toEqual([1, 1, 0]);
  }
  const truth = await streamEvents(redis, prefix);
  expect(failedCounts(truth as unknown as StatusMsg[], [j1, j2, j3])).toEqual([1, 1, 0]);
  // Not before LOST_AFTER: the settlement (its event id is Redis time) came at least LOST_AFTER
  // after A's last heartbeat (Redis time too).
  const lastSeen = Number(await redis.zscore(`${prefix}:nodes`, aId));
  for (const ev of truth.filter((e) => e.status === "Failed")) {
    expect(Number(ev.eventId.split("-")[0]) - lastSeen).toBeGreaterThanOrEqual(FAST.lostAfterMs);
  }
  const record = await redis.hgetall(`${prefix}:node:${aId}`);
  expect(record.status).toBe("Offline");
  expect(record.settledEpoch).toBe(record.epoch);
  expect(await redis.scard(`${prefix}:node:${aId}:jobs`)).toBe(0);
  // A died, its jobs did not: nobody was there to stop them.
  expect(alive(pid1) && alive(pid2)).toBe(true);

  if (!restartAfter) return;
  // The same node id starts again (in-process: it boots in a fraction of a child's time) on the
  // same scratch path: it terminates the processes of the jobs settled without it.
  const restartAt = Date.now();
  const again = await startTestNode(prefix, { nodeId: aId, scratchPath: a.settings.scratchPath });
  survivors.push(again);
  figures.restartReady = Date.now() - restartAt;
  await until(() => !alive(pid1) && !alive(pid2), { timeoutMs: 10_000 });
  figures.orphansGoneAfterRestart = Date.now() - restartAt;
  for (const id of [j1, j2])
    expect((await api(b.url, "GET", `/jobs/${id}`, { token: tok })).body.status).toBe("Failed");
  await until(async () => (await nodeView(b.url, aId))?.online === true);
  expect(Number((await redis.hgetall(`${prefix}:node:${aId}`)).epoch)).toBe(Number(record.epoch) + 1);
}

describe("a node crash (SIGKILL)", () => {
  it("with 2 surviving nodes", async () => {
    await crashScenario((await scenarios)[0], true);
  }, 60_000);

  it("with 3 surviving nodes", async () => {
    await crashScenario((await scenarios)[1], false);
  }, 60_000);
});
