// Fleet-wide placement and queueing on real nodes: a job starts on the eligible node with the most
// free slots, waits in the fleet queue (Pending, no host, "Queued: …") when none has room, and
// starts where a slot frees. Queues and placement constraints reach only matching nodes; the
// per-user cap holds fleet-wide; a queued job can be canceled anywhere and never runs; the queue
// survives a Redis restart; a draining node is given nothing; /metrics shows the queue.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fleetKeys } from "../../src/cluster/keys.js";
import type { Settings } from "../../src/config.js";
import { api, startTestNode, type TestNode, token, until } from "../helpers/nodes.js";
import { redisUrl, uniquePrefix } from "../helpers/redis.js";
import { type RedisServer, removeRedisDir, startRedis } from "../helpers/redis-server.js";
import { getJob, type JobBody, listJobs, submit, waitStatus, waitTerminal } from "../node/helpers.js";
import {
  adminRedis,
  alive,
  closeAll,
  markedProcesses,
  nodesOf,
  RELAXED,
  sleep,
  tearDown,
  track,
  waitAllOnline,
} from "./helpers.js";

const figures: Record<string, number> = {};
/** The nodes, gates and Redis servers of the running test: afterEach ends them. */
let nodes: TestNode[] = [];
let gates: string[] = [];
let servers: RedisServer[] = [];

afterEach(async () => {
  // Gated jobs end by themselves once their gate is there (a job outlives its node by design).
  for (const gate of gates) writeFileSync(gate, "");
  await closeAll(nodes);
  for (const server of servers) {
    await server.stop();
    removeRedisDir(server);
  }
  nodes = [];
  gates = [];
  servers = [];
});

afterAll(() => tearDown({ figures: ["placement", figures] }));

/** Starts nodes with their own settings on one prefix and waits until each sees all of them Online. */
async function startNodes(prefix: string, each: Partial<Settings>[]): Promise<TestNode[]> {
  const started = await Promise.all(
    each.map((o) => track(startTestNode(prefix, { ...RELAXED, ...o }), nodes)),
  );
  await waitAllOnline(
    started.map((n) => n.url),
    started.map((n) => n.settings.nodeId),
  );
  return started;
}

/** A file a job waits for: `wait` is the shell loop, `open()` lets every waiting job go on. */
function newGate(dir: string, name: string): { wait: string; open: () => void } {
  const path = join(dir, name);
  gates.push(path);
  return { wait: `while [ ! -e ${path} ]; do sleep 0.05; done`, open: () => writeFileSync(path, "") };
}

const isQueued = (j: JobBody) =>
  j.status === "Pending" && j.host === undefined && String(j.statusMessage ?? "").startsWith("Queued: ");

/**
 * Polls `look` until it returns a value (its first element); on timeout the error says what was
 * awaited and what the last look saw (its second element).
 */
async function eventually<T>(
  what: string,
  look: () => Promise<[value: T | undefined, seen: unknown]>,
  timeoutMs = 10_000,
): Promise<T> {
  let last: unknown;
  try {
    return (
      await until(
        async () => {
          const [value, seen] = await look();
          last = seen;
          return value === undefined ? undefined : { value };
        },
        { timeoutMs, everyMs: 20 },
      )
    ).value;
  } catch (err) {
    throw new Error(`${what}: not seen within ${timeoutMs} ms; last seen ${JSON.stringify(last)}`, {
      cause: err,
    });
  }
}

/** runningJobs per node id, as GET /nodes on `url` reports them. */
async function runningPerNode(url: string): Promise<Map<string, number>> {
  return new Map((await nodesOf(url)).map((v) => [v.id, v.runningJobs]));
}

/**
 * How many of `jobs` (one listing) are Running; above `limit`, only those still Running when read
 * again after the listing count: they were all Running at once (a listing is not one atomic read).
 */
async function runningAtOnce(url: string, tok: string, jobs: JobBody[], limit: number): Promise<number> {
  const running = jobs.filter((j) => j.status === "Running");
  if (running.length <= limit) return running.length;
  const again = await Promise.all(running.map((j) => getJob({ url }, tok, j.id)));
  return again.filter((j) => j.status === "Running").length;
}

/**
 * Runs `sample` again and again (about every `everyMs`) until stop(), which resolves with the
 * number of samples taken (or throws what a sample threw).
 */
function sampling(sample: () => Promise<void> | void, everyMs = 20): { stop: () => Promise<number> } {
  let stopped = false;
  let count = 0;
  let failed: unknown;
  const loop = (async () => {
    while (!stopped) {
      try {
        await sample();
      } catch (err) {
        failed = err;
        return;
      }
      count++;
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      if (failed) throw failed;
      return count;
    },
  };
}

/** The owner recorded for each job (the node it was placed on). */
async function owners(prefix: string, url: string, ids: string[]): Promise<string[]> {
  const redis = adminRedis(url);
  try {
    const keys = fleetKeys(prefix);
    return await Promise.all(ids.map(async (id) => (await redis.hget(keys.job(id), "owner")) ?? ""));
  } finally {
    redis.disconnect();
  }
}

describe("placement across the fleet", () => {
  it("12 jobs submitted to one of 3 nodes with 2 slots each: 6 run at once, 2 per node, 6 queued; all finish", async () => {
    const prefix = uniquePrefix("place-spread");
    const fleet = await startNodes(prefix, [
      { maxRunningJobs: 2 },
      { maxRunningJobs: 2 },
      { maxRunningJobs: 2 },
    ]);
    const [a, b] = fleet as [TestNode, TestNode, TestNode];
    const nodeIds = fleet.map((n) => n.settings.nodeId);
    for (const v of await nodesOf(b.url))
      expect(v).toMatchObject({ slots: 2, runningJobs: 0, queues: ["default"] });
    const tok = await token("paula");

    // Invariants sampled throughout: never more than 2 on a node, never more than 6 Running.
    const most = { perNode: 0, running: 0, placedNotStartedMs: 0 };
    const placedSince = new Map<string, number>();
    const sampler = sampling(async () => {
      const [per, jobs] = await Promise.all([runningPerNode(b.url), listJobs(b, tok)]);
      most.perNode = Math.max(most.perNode, ...per.values());
      most.running = Math.max(most.running, await runningAtOnce(b.url, tok, jobs, 6));
      // How long a job placed on a node (Pending with a host) waits there before it starts.
      for (const j of jobs) {
        if (j.status !== "Pending" || j.host === undefined) continue;
        const since = placedSince.get(j.id) ?? Date.now();
        placedSince.set(j.id, since);
        most.placedNotStartedMs = Math.max(most.placedNotStartedMs, Date.now() - since);
      }
    });

    const t0 = Date.now();
    const ids: string[] = [];
    const answers: JobBody[] = [];
    for (let i = 0; i < 12; i++) {
      const job = await submit(a, tok, { command: "sleep 2", name: `spread-${i}` });
      ids.push(job.id);
      answers.push(job);
    }
    figures.submit12 = Date.now() - t0;
    // Six slots in the fleet: the first six submissions found one each.
    for (const job of answers.slice(0, 6)) expect(isQueued(job), JSON.stringify(job)).toBe(false);

    const snapshot = await eventually("6 Running, 2 per node", async () => {
      const [per, jobs] = await Promise.all([runningPerNode(b.url), listJobs(b, tok)]);
      const running = jobs.filter((j) => j.status === "Running");
      const ok = running.length === 6 && nodeIds.every((id) => per.get(id) === 2);
      return [ok ? jobs : undefined, { perNode: [...per], statuses: jobs.map((j) => j.status) }];
    });
    figures.sixRunning = Date.now() - t0;
    figures.sixRunningAfterLastSubmit = figures.sixRunning - figures.submit12;
    const waiting = snapshot.filter((j) => j.status !== "Running");
    figures.finishedBeforeSixRunning = waiting.filter((j) => j.status === "Finished").length;
    // The other six wait in the fleet queue: no host, "Queued: …". Six jobs start well within a
    // `sleep 2`; a job that had already finished here means a slot stood idle meanwhile (a job
    // placed on a node, Pending with a host, that did not start although the node had room).
    expect(
      waiting.map((j) => ({ name: j.name, status: j.status, host: j.host, statusMessage: j.statusMessage })),
      `a job placed on a node was seen Pending there (not started) for ${most.placedNotStartedMs} ms`,
    ).toEqual(
      waiting.map((j) => ({
        name: j.name,
        status: "Pending",
        host: undefined,
        statusMessage: expect.stringMatching(/^Queued: /),
      })),
    );
    const runningIds = snapshot.filter((j) => j.status === "Running").map((j) => j.id);
    const placedOn = await owners(prefix, redisUrl(), runningIds);
    for (const id of nodeIds) expect(placedOn.filter((o) => o === id)).toHaveLength(2);

    for (const id of ids) {
      const done = await waitTerminal(b, tok, id, 30_000);
      expect(done, JSON.stringify(done)).toMatchObject({ status: "Finished", exitCode: 0 });
      expect(done.host).toEqual(expect.any(String));
    }
    figures.allTwelveFinished = Date.now() - t0;
    figures.spreadSamples = await sampler.stop();
    figures.longestPlacedNotStarted = most.placedNotStartedMs;
    expect(most.perNode).toBe(2);
    expect(most.running).toBe(6);
    expect([...(await runningPerNode(a.url)).values()]).toEqual([0, 0, 0]);
  }, 60_000);

  it("queues and placement constraints reach only matching nodes; unservable ones are refused", async () => {
    const prefix = uniquePrefix("place-match");
    const [x, y, z] = (await startNodes(prefix, [
      { maxRunningJobs: 8, queues: ["gpu"], nodeLabels: { gpu: "a100", zone: "b" } },
      { maxRunningJobs: 8, queues: ["default"], nodeLabels: { zone: "b" } },
      { maxRunningJobs: 8, queues: ["default"], nodeLabels: { gpu: "t4", zone: "a" } },
    ])) as [TestNode, TestNode, TestNode];
    const [X, Y, Z] = [x, y, z].map((n) => n.settings.nodeId) as [string, string, string];
    const views = await nodesOf(y.url);
    expect(views.find((v) => v.id === X)).toMatchObject({
      slots: 8,
      labels: { gpu: "a100", zone: "b" },
      queues: ["gpu"],
    });
    expect(views.find((v) => v.id === Z)).toMatchObject({
      labels: { gpu: "t4", zone: "a" },
      queues: ["default"],
    });

    const info = (
      await api<Record<string, unknown>>(z.url, "GET", "/cluster-info", { token: await token("carl") })
    ).body;
    expect(info.queues).toEqual(expect.arrayContaining(["gpu", "default"]));
    expect(info.defaultQueue).toBe("default");
    expect(info.placementConstraints).toEqual(
      expect.arrayContaining([
        { name: "gpu", value: "a100" },
        { name: "gpu", value: "t4" },
        { name: "zone", value: "a" },
        { name: "zone", value: "b" },
      ]),
    );

    const tok = await token("carl");
    const admin = await token("root", { admin: true });
    const gate = newGate(mkdtempSync(join(tmpdir(), "place-match-")), "go");
    // Each job goes in through a node that may not run it, so "the receiving node" explains nothing.
    const cases: [via: TestNode, body: Record<string, unknown>, on: string[]][] = [
      [y, { queues: ["gpu"] }, [X]],
      [z, { queues: ["gpu"] }, [X]],
      [z, { queues: ["gpu"], placementConstraints: [{ name: "zone", value: "b" }] }, [X]],
      [x, { placementConstraints: [{ name: "gpu", value: "t4" }] }, [Z]],
      [y, { placementConstraints: [{ name: "gpu" }] }, [Z]],
      [x, { placementConstraints: [{ name: "zone", value: "b" }] }, [Y]],
      [z, { placementConstraints: [{ name: "zone", value: "b" }, { name: "zone" }] }, [Y]],
      [x, {}, [Y, Z]],
    ];
    const ids: string[] = [];
    for (const [via, body] of cases) {
      const job = await submit(via, tok, { command: gate.wait, ...body });
      expect(isQueued(job), JSON.stringify(job)).toBe(false);
      ids.push(job.id);
    }
    for (const id of ids) await waitStatus(x, tok, id, "Running");
    const placedOn = await owners(prefix, redisUrl(), ids);
    cases.forEach(([, body, on], i) => {
      expect(on, `${JSON.stringify(body)} ran on ${placedOn[i]}`).toContain(placedOn[i]);
    });
    const per = await runningPerNode(z.url);
    expect(per.get(X)).toBe(3);
    expect((per.get(Y) ?? 0) + (per.get(Z) ?? 0)).toBe(5);
    expect(per.get(Y)).toBeGreaterThanOrEqual(2);
    expect(per.get(Z)).toBeGreaterThanOrEqual(2);

    // No registered node serves the queue, or none serving it has the labels: 400, nothing created.
    const count = async () => (await listJobs(x, admin, "?user=*")).length;
    const before = await count();
    const refused: [body: Record<string, unknown>, field: string][] = [
      [{ queues: ["nope"] }, "queues"],
      [{ queues: ["nope", "other"] }, "queues"],
      // Every queue named must be served (a free name would be a new fleet-queue class per submission).
      [{ queues: ["nope", "gpu"] }, 'queues: no node of the fleet serves "nope"'],
      // X has gpu=a100 but serves only "gpu"; the job is in the default queue.
      [{ placementConstraints: [{ name: "gpu", value: "a100" }] }, "placementConstraints"],
      [{ queues: ["gpu"], placementConstraints: [{ name: "gpu", value: "h100" }] }, "placementConstraints"],
      [{ placementConstraints: [{ name: "fpga" }] }, "placementConstraints"],
      [{ queues: ["gpu"], placementConstraints: [{ name: "zone", value: "a" }] }, "placementConstraints"],
      [
        {
          placementConstraints: [
            { name: "gpu", value: "t4" },
            { name: "zone", value: "b" },
          ],
        },
        "placementConstraints",
      ],
    ];
    for (const [body, field] of refused) {
      for (const via of [x, y]) {
        const res = await api<Record<string, unknown>>(via.url, "POST", "/jobs", {
          token: tok,
          body: { command: "true", ...body },
        });
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body, JSON.stringify(body)).toMatchObject({ code: 2, name: "InvalidRequest" });
        expect(String(res.body.message), JSON.stringify(body)).toContain(field);
      }
    }
    expect(await count()).toBe(before);

    gate.open();
    for (const id of ids) expect(await waitStatus(x, tok, id, "Finished")).toMatchObject({ exitCode: 0 });
  }, 60_000);

  it("the per-user cap holds fleet-wide while another user's jobs start at once", async () => {
    const prefix = uniquePrefix("place-user");
    const fleet = await startNodes(prefix, [
      { maxRunningJobs: 10, maxRunningJobsPerUser: 2 },
      { maxRunningJobs: 10, maxRunningJobsPerUser: 2 },
    ]);
    const [a, b] = fleet as [TestNode, TestNode];
    const [alice, bob] = await Promise.all([token("alice"), token("bob")]);
    const dir = mkdtempSync(join(tmpdir(), "place-user-"));
    const aliceGate = newGate(dir, "alice");
    const bobGate = newGate(dir, "bob");
    const marker = `place-user-${Math.random().toString(36).slice(2, 10)}`;

    const most = { aliceApi: 0, aliceProcs: 0 };
    const procs = sampling(() => {
      most.aliceProcs = Math.max(most.aliceProcs, markedProcesses(`${marker}-alice`).length);
    });
    const apis = sampling(async () => {
      const aj = await listJobs(a, alice);
      most.aliceApi = Math.max(most.aliceApi, await runningAtOnce(a.url, alice, aj, 2));
    });

    // Alice's five, through both nodes: two start, three wait in the fleet queue (slots are free).
    const aliceIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const via = i % 2 ? b : a;
      aliceIds.push(
        (await submit(via, alice, { command: `${aliceGate.wait}; sleep 0.3; : ${marker}-alice` })).id,
      );
    }
    const queuedAlice = async () => (await listJobs(a, alice)).filter(isQueued).length;
    await eventually("alice: 2 Running, 3 queued", async () => {
      const jobs = await listJobs(a, alice);
      const ok =
        jobs.filter((j) => j.status === "Running").length === 2 && jobs.filter(isQueued).length === 3;
      return [ok || undefined, jobs.map((j) => [j.status, j.statusMessage])];
    });

    // Bob's two start at once, though alice's three wait.
    const t0 = Date.now();
    const bobJobs = [
      await submit(b, bob, { command: `${bobGate.wait}; : ${marker}-bob` }),
      await submit(a, bob, { command: `${bobGate.wait}; : ${marker}-bob` }),
    ];
    for (const job of bobJobs) expect(isQueued(job), JSON.stringify(job)).toBe(false);
    const bobIds = bobJobs.map((j) => j.id);
    for (const id of bobIds) await waitStatus(a, bob, id, "Running");
    // Both at once (they wait for their gate).
    expect((await listJobs(b, bob)).map((j) => j.status)).toEqual(["Running", "Running"]);
    figures.bobBothRunning = Date.now() - t0;
    expect(await queuedAlice()).toBe(3);

    // Bob's jobs end; the free slots do not let alice past her cap.
    bobGate.open();
    for (const id of bobIds) expect(await waitStatus(b, bob, id, "Finished")).toMatchObject({ exitCode: 0 });
    expect(await queuedAlice()).toBe(3);
    expect((await listJobs(b, alice)).filter((j) => j.status === "Running")).toHaveLength(2);

    aliceGate.open();
    for (const id of aliceIds) {
      expect(await waitStatus(b, alice, id, "Finished", 20_000)).toMatchObject({ exitCode: 0 });
    }
    figures.userCapProcSamples = await procs.stop();
    figures.userCapApiSamples = await apis.stop();
    expect(most.aliceApi).toBe(2);
    expect(most.aliceProcs).toBeLessThanOrEqual(2);
    expect(most.aliceProcs).toBeGreaterThan(0);
  }, 60_000);

  it("a queued job canceled through another node is Canceled and never runs", async () => {
    const prefix = uniquePrefix("place-cancel");
    const [a, b] = (await startNodes(prefix, [{ maxRunningJobs: 1 }, { maxRunningJobs: 1 }])) as [
      TestNode,
      TestNode,
    ];
    const tok = await token("cora");
    const dir = mkdtempSync(join(tmpdir(), "place-cancel-"));
    const gate = newGate(dir, "go");
    const mark = join(dir, "canceled-job-ran");
    const ledger = join(dir, "ledger");

    // Both slots taken.
    const blockers = [
      (await submit(a, tok, { command: gate.wait })).id,
      (await submit(a, tok, { command: gate.wait })).id,
    ];
    for (const id of blockers) await waitStatus(b, tok, id, "Running");
    expect([...(await runningPerNode(b.url)).values()]).toEqual([1, 1]);

    const queued = await submit(a, tok, { command: `touch ${mark}`, name: "to-cancel" });
    expect(isQueued(queued), JSON.stringify(queued)).toBe(true);
    const after = await submit(a, tok, { command: `echo after >> ${ledger}`, name: "after" });
    expect(isQueued(after), JSON.stringify(after)).toBe(true);
    expect(isQueued(await getJob(b, tok, queued.id))).toBe(true);

    // Other operations answer as for Pending, through either node.
    for (const via of [a, b]) {
      const res = await api<Record<string, unknown>>(via.url, "POST", `/jobs/${queued.id}/control`, {
        token: tok,
        body: { operation: "suspend" },
      });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ name: "InvalidJobState" });
    }

    const res = await api(b.url, "POST", `/jobs/${queued.id}/control`, {
      token: tok,
      body: { operation: "cancel" },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await getJob(a, tok, queued.id)).status).toBe("Canceled");

    // The slots free; the job behind it in the queue runs, the canceled one does not.
    gate.open();
    for (const id of blockers)
      expect(await waitStatus(a, tok, id, "Finished")).toMatchObject({ exitCode: 0 });
    expect(await waitStatus(b, tok, after.id, "Finished")).toMatchObject({ exitCode: 0 });
    await sleep(500);
    expect(existsSync(mark)).toBe(false);
    expect(await getJob(b, tok, queued.id)).toMatchObject({ status: "Canceled" });
    expect((await getJob(b, tok, queued.id)).pid).toBeUndefined();
    expect(readFileSync(ledger, "utf8")).toBe("after\n");
  }, 60_000);

  it("the queue survives a Redis restart: every queued job runs exactly once, in order", async () => {
    const server = await startRedis({ persistence: true });
    servers.push(server);
    const prefix = uniquePrefix("place-redis");
    const [n] = (await startNodes(prefix, [
      { redisUrl: server.url, maxRunningJobs: 1, offlineAfterMs: 1_000, lostAfterMs: 3_000 },
    ])) as [TestNode];
    const tok = await token("rhea");
    const dir = mkdtempSync(join(tmpdir(), "place-redis-"));
    const gate = newGate(dir, "go");
    const ledger = join(dir, "ledger");

    const blocker = await submit(n, tok, { command: gate.wait });
    const pid = (await waitStatus(n, tok, blocker.id, "Running")).pid as number;
    const tokens = Array.from({ length: 5 }, (_, i) => `job-${i}`);
    const ids: string[] = [];
    for (const t of tokens) {
      const job = await submit(n, tok, { command: `echo ${t} >> ${ledger}; sleep 0.1` });
      expect(isQueued(job), JSON.stringify(job)).toBe(true);
      ids.push(job.id);
    }

    await server.stop();
    const downAt = Date.now();
    // The running job ends while Redis is away: its slot frees only in the node's memory.
    gate.open();
    await until(() => !alive(pid), { timeoutMs: 5_000 });
    await sleep(500);
    await server.restart();
    figures.redisDownFor = Date.now() - downAt;
    const upAt = Date.now();
    await until(async () => (await fetch(`${n.url}/readyz`)).status === 200, {
      timeoutMs: 15_000,
      everyMs: 20,
    });

    expect(await waitStatus(n, tok, blocker.id, "Finished", 15_000)).toMatchObject({ exitCode: 0 });
    for (const id of ids)
      expect(await waitStatus(n, tok, id, "Finished", 15_000)).toMatchObject({ exitCode: 0 });
    figures.queueDrainedAfterRestart = Date.now() - upAt;
    await sleep(300);
    expect(readFileSync(ledger, "utf8").trim().split("\n")).toEqual(tokens);
  }, 60_000);

  it("a draining node is given no job, and jobs queued while it drains start elsewhere", async () => {
    const prefix = uniquePrefix("place-drain");
    const [a, d] = (await startNodes(prefix, [
      { maxRunningJobs: 1 },
      { maxRunningJobs: 5, drainMs: 60_000 },
    ])) as [TestNode, TestNode];
    const tok = await token("dana");
    const dir = mkdtempSync(join(tmpdir(), "place-drain-"));
    const gate = newGate(dir, "go");
    // d drains (it keeps serving HTTP for drainMs); every node must see it Draining.
    void d.node.drain();
    await eventually("d Draining in a's view", async () => {
      const view = (await nodesOf(a.url)).find((v) => v.id === d.settings.nodeId);
      return [view?.status === "Draining" ? true : undefined, view];
    });
    // Submitted through the draining node, which has 5 free slots: none may go there.
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await submit(d, tok, { command: `${gate.wait}; echo ${i}` }));
    const placed = await owners(
      prefix,
      redisUrl(),
      jobs.map((j) => j.id),
    );
    expect(placed.filter((o) => o === d.settings.nodeId)).toEqual([]);
    expect(placed.filter((o) => o === a.settings.nodeId)).toHaveLength(1);
    expect(jobs.filter(isQueued)).toHaveLength(2);
    gate.open();
    for (const j of jobs) expect(await waitStatus(a, tok, j.id, "Finished")).toMatchObject({ exitCode: 0 });
    expect(
      await owners(
        prefix,
        redisUrl(),
        jobs.map((j) => j.id),
      ),
    ).toEqual(jobs.map(() => a.settings.nodeId));
  }, 60_000);

  it("/metrics: queue depth per queue, queue wait and placements per node", async () => {
    const prefix = uniquePrefix("place-metrics");
    const [n] = (await startNodes(prefix, [{ maxRunningJobs: 1 }])) as [TestNode];
    const tok = await token("mona");
    const gate = newGate(mkdtempSync(join(tmpdir(), "place-metrics-")), "go");
    const metric = async (name: string) => {
      const text = String((await api(n.url, "GET", "/metrics")).body);
      const line = text.split("\n").find((l) => l.startsWith(name));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await submit(n, tok, { command: gate.wait }));
    expect(jobs.filter(isQueued)).toHaveLength(2);
    expect(await metric('launcher_queue_depth{queue="default"}')).toBe(2);
    gate.open();
    for (const j of jobs) await waitStatus(n, tok, j.id, "Finished");
    const node = n.settings.nodeId;
    expect(await metric(`launcher_jobs_placed_total{node="${node}",via="direct"}`)).toBe(1);
    expect(await metric(`launcher_jobs_placed_total{node="${node}",via="queue"}`)).toBe(2);
    expect(await metric("launcher_queue_wait_seconds_count")).toBe(2);
    expect(await metric('launcher_queue_depth{queue="default"}')).toBeUndefined();
  }, 60_000);
});
