// Fleet-wide placement and the fleet queue (issue 13), three measures:
//
// balance: a fleet of 3 nodes with 4 slots each (LAUNCHER_MAX_RUNNING_JOBS=4), each warmed up by
// one job; every job (`sleep 1.5`) is submitted to node-1 (skewed submission). While jobs are queued,
// GET /nodes is sampled (on node-3) and the per-node `runningJobs` compared: max/min of the
// time-averaged counts (1.00 = balanced) and of the samples. The same from the status events alone
// (each job's Running → end on its owner, from Redis), which sees a job placed on a node but not yet
// started; the time until every slot ran a job; placed-at-submission → Running; the makespan.
// Baseline: the same submissions where they arrived (all on node-1: what happened before placement),
// 4/0/0, with its makespan computed (N/4 rounds of the job's duration on one node's 4 slots).
// queue-latency: one node with 1 slot; a blocker job holds it while N short jobs (`true`) are
// submitted, so every one of them waits in the fleet queue. For each, from the previous job's
// Finished to its Running, both as they arrive on the node's `*` status stream (the same path for
// both events): p50/p99. Baseline in the same run, same Redis: a BullMQ worker with concurrency 1
// (bench/bullmq-pickup-worker.ts) over a backlog of N jobs running `true` through `/bin/sh -c`: from
// one job's `completed` to the next job's `active` (QueueEvents, as they arrive), and inside the
// worker from one job's process exit to the next job's process spawn.
// DESIGN: a slot freeing to the next queued job Running: p99 under 50 ms.
//
// queue-scale: 100,000 queued jobs (10,000 in quick mode) of mixed queues, placement constraints
// and users (a seeded mix: 4 queue choices, zone/gpu constraints, 50 users; a few hundred queue
// classes), written through JobStore.create as a receiving node with no candidate (so each waits in
// its class); then 4 simulated nodes (registered with `register_node` with their slots, queues and
// labels, heartbeating) claim them with the real claim script (JobStore.claim), one job per call
// (a slot freeing), 2 calls in flight per node: claims/s, call latency, Redis CPU (INFO cpu,
// used_cpu_sys + used_cpu_user over wall time) and its µs per claim. The same queue size in a single
// class shows what the claim costs per class. Baselines in the same run, same private Redis, same
// clients and concurrency: a plain ZPOPMIN loop over a sorted set of the same size (the cheapest a
// queue pop can be), and `redis-benchmark` ZPOPMIN over it (capacity with 50 clients).
// DESIGN: claims keep up at 2,000/s with 100,000 jobs queued.
import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import type { ScriptedRedis } from "../src/cluster/scripts.js";
import {
  type BenchRedis,
  type Ctx,
  DIST,
  execFileP,
  fmtMs,
  fmtNum,
  fmtRatio,
  Http,
  jobStore,
  keysModule,
  mapLimit,
  monoMs,
  redisDelta,
  redisSnapshot,
  Stack,
  type Summary,
  scripts,
  sleep,
  startFleet,
  startRedis,
  stopProcess,
  submit,
  summarize,
  until,
  verdict,
} from "./lib.js";

const TERMINAL = new Set(["Finished", "Failed", "Killed", "Canceled"]);

/** First arrival (monoMs) of each job's Running and terminal status on one `*` status stream. */
interface StatusTimes {
  running: Map<string, number>;
  ended: Map<string, number>;
  final: Map<string, string>;
  error?: string;
}

async function watchStatuses(stack: Stack, http: Http): Promise<StatusTimes> {
  const t: StatusTimes = { running: new Map(), ended: new Map(), final: new Map() };
  const abort = new AbortController();
  stack.defer("close a status stream", () => abort.abort());
  const s = await http.stream(
    "/jobs/*/status",
    (msg, at) => {
      if (msg.error) t.error ??= JSON.stringify(msg.error);
      const id = msg.id;
      if (typeof id !== "string") return;
      const status = String(msg.status);
      if (status === "Running" && !t.running.has(id)) t.running.set(id, at);
      if (TERMINAL.has(status) && !t.ended.has(id)) {
        t.ended.set(id, at);
        t.final.set(id, status);
      }
    },
    abort.signal,
  );
  void s.done.catch((err: Error) => {
    t.error ??= err.message;
  });
  return t;
}

interface NodeView {
  id: string;
  runningJobs: number;
  slots?: number;
  status: string;
}

const pad = (xs: readonly number[]) => xs.map((x) => fmtNum(x, 1)).join("/");

/** A submission's answer says the job waits in the fleet queue (Pending, "Queued: …", no host). */
const isQueued = (job: { status: string; statusMessage?: string }) =>
  job.status === "Pending" && (job.statusMessage ?? "").startsWith("Queued: ");

/** max/min of per-node counts: 1 = balanced, ∞ when a node had none while another had some. */
const balanceRatio = (xs: readonly number[]) => Math.max(...xs) / Math.min(...xs);
const fmtBalance = (x: number) =>
  x === Number.POSITIVE_INFINITY ? "∞" : Number.isNaN(x) ? "n/a (all 0)" : fmtRatio(x);

// ---------------------------------------------------------------------------------------------
// balance

export async function placementBalance(ctx: Ctx): Promise<void> {
  const MEASURE = "balance";
  const stack = new Stack(MEASURE);
  try {
    const nodes = 3;
    const slots = 4;
    const rounds = ctx.full ? 8 : 3;
    const n = nodes * slots * rounds;
    const seconds = 1.5;
    const redis = await startRedis(stack);
    const fleet = await startFleet(stack, ctx, {
      nodes,
      haproxy: false,
      redisUrl: redis.url,
      prefix: "bench-balance",
      env: { LAUNCHER_MAX_RUNNING_JOBS: String(slots) },
    });
    const token = await fleet.adminToken("1h");
    const entry = new Http(fleet.nodes[0]!.url, token, stack, 4);
    const watcher = new Http(fleet.nodes[1]!.url, token, stack, 1);
    const sampler = new Http(fleet.nodes[2]!.url, token, stack, 1);
    const ids = fleet.nodes.map((x) => x.id);
    const times = await watchStatuses(stack, watcher);

    const getNodes = async () =>
      (await sampler.json<{ nodes: NodeView[] }>("GET", "/nodes")).body.nodes.filter((x) =>
        ids.includes(x.id),
      );
    const advertised = await getNodes();
    ctx.log(
      `  ${nodes} nodes, LAUNCHER_MAX_RUNNING_JOBS=${slots}; GET /nodes slots: ${advertised.map((x) => `${x.id} ${x.slots ?? "?"}`).join(", ")}`,
    );

    // Warm-up: a job on each node (submitted to it; with every slot free, the tie goes to the
    // receiving node) starts its job supervisor, which each node otherwise starts at its first job.
    const warm = await Promise.all(
      fleet.nodes.map((node) =>
        submit(new Http(node.url, token, stack, 1), { command: "true", name: "bench-balance-warmup" }),
      ),
    );
    await until("the warm-up jobs to end", () => warm.every((j) => times.ended.has(j.id)), 30_000, 20);

    // Samples of GET /nodes (on node-3) until every job ended.
    const samples: { at: number; running: number[] }[] = [];
    let sampling = true;
    const sampleLoop = (async () => {
      while (sampling) {
        const at = monoMs();
        const view = await getNodes().catch(() => undefined);
        if (view) {
          const byId = new Map(view.map((x) => [x.id, x.runningJobs]));
          samples.push({ at, running: ids.map((id) => byId.get(id) ?? 0) });
        }
        await sleep(50);
      }
    })();
    stack.defer("stop sampling", async () => {
      sampling = false;
      await sampleLoop;
    });

    const t0 = monoMs();
    const submitted: string[] = [];
    const queuedAtSubmit: string[] = [];
    /** When each job placed at submission (not queued) was answered. */
    const placedAt = new Map<string, number>();
    await mapLimit(Array.from({ length: n }), 4, async () => {
      const job = await submit(entry, { command: "sleep", args: [String(seconds)], name: "bench-balance" });
      submitted.push(job.id);
      if (isQueued(job)) queuedAtSubmit.push(job.id);
      else placedAt.set(job.id, monoMs());
    });
    const tSubmitted = monoMs();
    await until(
      "every balance job to end",
      () => submitted.every((id) => times.ended.has(id)),
      60_000 + n * seconds * 1000,
      50,
    );
    const tEnd = monoMs();
    sampling = false;
    await sampleLoop;

    // Saturated window: from the last submission to the last job's Running (jobs were queued
    // throughout: each node should run `slots` jobs).
    const starts = submitted.map((id) => times.running.get(id) ?? Number.NaN).filter(Number.isFinite);
    const lastStart = Math.max(...starts);
    const window = samples.filter((s) => s.at >= tSubmitted && s.at <= lastStart);
    const mean = ids.map((_, i) => window.reduce((a, s) => a + s.running[i]!, 0) / (window.length || 1));
    const sampleRatios = window.map((s) => balanceRatio(s.running)).sort((a, b) => a - b);
    const worst = sampleRatios.at(-1) ?? Number.NaN;
    const medianSample = sampleRatios[Math.floor(sampleRatios.length / 2)] ?? Number.NaN;
    const overLimit = samples.filter((s) => s.running.some((r) => r > slots)).length;
    const maxSeen = Math.max(0, ...samples.flatMap((s) => s.running));

    // Where the jobs ran: each job's owner in Redis.
    const conn = await redis.connect("bench-balance-owners");
    const p = conn.pipeline();
    for (const id of submitted) p.hget(`bench-balance:job:${id}`, "owner");
    const owners = ((await p.exec()) ?? []).map(([, owner]) => String(owner ?? ""));
    const perOwner = ids.map((id) => owners.filter((o) => o === id).length);
    const notFinished = submitted.filter((id) => times.final.get(id) !== "Finished").length;

    // The same from the status events alone (each job Running → ended, on its owner), independent
    // of GET /nodes: the time-averaged running count per node over the window, and the most at once.
    const intervals = submitted.map((id, j) => ({
      node: ids.indexOf(owners[j]!),
      from: times.running.get(id) ?? Number.NaN,
      to: times.ended.get(id) ?? Number.NaN,
    }));
    const wFrom = tSubmitted;
    const wTo = lastStart;
    const eventMean = ids.map(
      (_, i) =>
        intervals
          .filter((x) => x.node === i)
          .reduce((a, x) => a + Math.max(0, Math.min(x.to, wTo) - Math.max(x.from, wFrom)), 0) /
        Math.max(1e-9, wTo - wFrom),
    );
    const eventMax = ids.map((_, i) => {
      const edges = intervals
        .filter((x) => x.node === i && Number.isFinite(x.from))
        .flatMap((x) => [
          [x.from, 1],
          [x.to, -1],
        ])
        .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
      let cur = 0;
      let most = 0;
      for (const [, d] of edges) {
        cur += d!;
        most = Math.max(most, cur);
      }
      return most;
    });

    // Time until the fleet's every slot was busy: the (nodes × slots)-th Running.
    const sortedStarts = [...starts].sort((a, b) => a - b);
    const filled = (sortedStarts[nodes * slots - 1] ?? Number.NaN) - t0;
    const makespan = (tEnd - t0) / 1000;
    const oneNode = Math.ceil(n / slots) * seconds;
    const ideal = Math.ceil(n / (nodes * slots)) * seconds;

    // Jobs placed at submission: from the answer to Running (a node with a free slot starts its job at once).
    const placedStart = [...placedAt].map(([id, at]) => ({
      id,
      ms: (times.running.get(id) ?? Number.NaN) - at,
      node: owners[submitted.indexOf(id)],
    }));
    const placedLat = summarize(placedStart.map((x) => x.ms));
    const late = placedStart.filter((x) => x.ms > 500);
    if (ctx.verbose) {
      const first = submitted
        .map((id, j) => ({ at: (times.running.get(id) ?? Number.NaN) - t0, node: owners[j] }))
        .sort((a, b) => a.at - b.at)
        .slice(0, nodes * slots + 4);
      ctx.log(
        `  first Running (ms after the first submission): ${first.map((x) => `${x.node} ${x.at.toFixed(0)}`).join(", ")}`,
      );
    }
    ctx.log(
      `  ${n} × sleep ${seconds} submitted to node-1 in ${fmtMs(tSubmitted - t0, 0)} (${queuedAtSubmit.length} of them queued at submission); ` +
        `${window.length} samples of GET /nodes over ${fmtMs(wTo - wFrom, 0)} while queued; jobs per node ${perOwner.join("/")}; ` +
        `from events: mean running ${pad(eventMean)}, most at once ${eventMax.join("/")}; ` +
        `placed at submission → Running ${lat(placedLat)} max ${fmtMs(placedLat.max, 0)}` +
        `${late.length ? ` (over 500 ms: ${late.map((x) => `${x.id} on ${x.node} ${fmtMs(x.ms, 0)}`).join(", ")})` : ""}` +
        `${notFinished ? `; NOT Finished: ${notFinished}` : ""}${times.error ? `; stream error ${times.error}` : ""}`,
    );
    ctx.row({
      measure: MEASURE,
      metric: `running per node while queued, all submitted to node-1 (${nodes}×${slots} slots, N=${n})`,
      value: `max/min ${fmtBalance(balanceRatio(mean))} (GET /nodes mean ${pad(mean)})`,
      baseline: `as submitted (before placement): ${slots}/0/0, max/min ∞`,
      ratio: `worst sample ${fmtBalance(worst)}, median ${fmtBalance(medianSample)}`,
      target: "1.00x (balanced)",
    });
    ctx.row({
      measure: MEASURE,
      metric: "  the same from status events and owners",
      value: `max/min ${fmtBalance(balanceRatio(eventMean))} (mean ${pad(eventMean)})`,
      baseline: `jobs per node ${perOwner.join("/")}`,
      ratio: `most at once ${eventMax.join("/")} (limit ${slots})`,
    });
    ctx.row({
      measure: MEASURE,
      metric: "  first submission → every slot Running; makespan",
      value: `${fmtMs(filled, 0)}; ${makespan.toFixed(1)} s`,
      baseline: `one node: ${oneNode.toFixed(1)} s (computed), ideal ${ideal.toFixed(1)} s`,
      ratio: fmtRatio(makespan / oneNode),
    });
    ctx.row({
      measure: MEASURE,
      metric: "  placed at submission → Running",
      value: `${lat(placedLat)} max ${fmtMs(placedLat.max, 0)}`,
      baseline: `${placedStart.length} jobs placed, ${late.length} over 500 ms`,
    });
    ctx.row({
      measure: MEASURE,
      metric: "  GET /nodes runningJobs above the limit",
      value: `${overLimit} of ${samples.length} samples (max seen ${maxSeen}, limit ${slots})`,
    });
  } finally {
    await stack.close();
  }
}

// ---------------------------------------------------------------------------------------------
// queue-latency

/**
 * Slot-free → next start latencies: the k-th end (in time order) frees the slot that the
 * (k + slots)-th start takes. Negative when the next job's start arrived before the end.
 */
function pickups(starts: readonly number[], ends: readonly number[], slots: number): number[] {
  const s = [...starts].sort((a, b) => a - b);
  const e = [...ends].sort((a, b) => a - b);
  const out: number[] = [];
  for (let k = 0; k + slots < s.length && k < e.length; k++) out.push(s[k + slots]! - e[k]!);
  return out;
}

const lat = (x: Summary, digits = 1) => `p50 ${fmtMs(x.p50, digits)} p99 ${fmtMs(x.p99, digits)}`;

export async function queueLatency(ctx: Ctx): Promise<void> {
  const MEASURE = "queue-latency";
  const stack = new Stack(MEASURE);
  try {
    const n = ctx.full ? 500 : 200;
    const slots = 1;
    const redis = await startRedis(stack);

    // Ours: one node, 1 slot.
    const fleet = await startFleet(stack, ctx, {
      nodes: 1,
      haproxy: false,
      redisUrl: redis.url,
      prefix: "bench-queue",
      env: { LAUNCHER_MAX_RUNNING_JOBS: String(slots) },
    });
    const token = await fleet.adminToken("1h");
    const http = new Http(fleet.nodes[0]!.url, token, stack, 4);
    const times = await watchStatuses(stack, new Http(fleet.nodes[0]!.url, token, stack, 1));
    const runBatch = async (count: number, blockerSec: number) => {
      // The blocker holds the slot while the batch is submitted: every batch job is queued.
      const blocker = await submit(http, {
        command: "sleep",
        args: [String(blockerSec)],
        name: "bench-queue-blocker",
      });
      await until("the blocker to run", () => times.running.has(blocker.id), 15_000, 5);
      const ids: string[] = [];
      const direct: string[] = [];
      await mapLimit(Array.from({ length: count }), 4, async () => {
        const job = await submit(http, { command: "true", name: "bench-queue" });
        ids.push(job.id);
        if (!isQueued(job)) direct.push(job.id);
      });
      const submittedBeforeFree = !times.ended.has(blocker.id);
      await until(
        "every queued job to end",
        () => ids.every((id) => times.ended.has(id)),
        30_000 + count * 200,
        10,
      );
      const all = [blocker.id, ...ids];
      return {
        pickups: pickups(
          all.map((id) => times.running.get(id)!),
          all.map((id) => times.ended.get(id)!),
          slots,
        ),
        direct: direct.length,
        submittedBeforeFree,
        notFinished: ids.filter((id) => times.final.get(id) !== "Finished").length,
        durations: ids.map((id) => times.ended.get(id)! - times.running.get(id)!),
      };
    };
    await runBatch(10, 0.5); // warm-up: JIT, the node's supervisor, connections
    const ours = await runBatch(n, 1 + n / 100);
    const o = summarize(ours.pickups);
    ctx.log(
      `  ours: ${ours.pickups.length} pick-ups, ${lat(o, 2)} max ${fmtMs(o.max, 1)} min ${fmtMs(o.min, 2)}; ` +
        `Running→Finished of a \`true\` job p50 ${fmtMs(summarize(ours.durations).p50, 1)}; ` +
        `${ours.direct} not queued at submission${ours.submittedBeforeFree ? "" : " (the blocker ended before every job was submitted)"}` +
        `${ours.notFinished ? `; NOT Finished: ${ours.notFinished}` : ""}${times.error ? `; stream error ${times.error}` : ""}`,
    );

    // BullMQ: one worker process with concurrency 1, a backlog of n jobs.
    const bull = await startPickupBullmq(stack, redis, slots);
    const bullBatch = async (count: number) => {
      const jobs = await bull.queue.addBulk(
        Array.from({ length: count }, () => ({ name: "job", data: { command: "true" } })),
      );
      const ids = jobs.map((j) => j.id!);
      await until(
        "every BullMQ job to complete",
        () => ids.every((id) => bull.ends.has(id)),
        30_000 + count * 200,
        10,
      );
      const w = await bull.report();
      return {
        events: pickups(
          ids.map((id) => bull.actives.get(id)!),
          ids.map((id) => bull.ends.get(id)!),
          slots,
        ),
        process: pickups(
          ids.map((id) => w.spawns.get(id)!),
          ids.map((id) => w.exits.get(id)!),
          slots,
        ),
        failed: ids.filter((id) => bull.failed.has(id)).length,
      };
    };
    await bullBatch(10);
    const b = await bullBatch(n);
    const be = summarize(b.events);
    const bp = summarize(b.process);
    ctx.log(
      `  BullMQ (1 worker, concurrency ${slots}): completed→active ${lat(be, 2)}; exit→next spawn in the worker ${lat(bp, 2)}` +
        `${b.failed ? `; FAILED: ${b.failed}` : ""}`,
    );
    ctx.row({
      measure: MEASURE,
      metric: `slot freed (Finished) → next queued job Running (1 node, ${slots} slot, N=${n})`,
      value: lat(o),
      baseline: `BullMQ exit → next job's process spawned ${lat(bp, 2)}`,
      ratio: `${fmtRatio(o.p50 / bp.p50)} p50, ${fmtRatio(o.p99 / bp.p99)} p99`,
      target: "p99 < 50 ms",
      verdict: verdict(o.p99 < 50 && ours.notFinished === 0 && ours.pickups.length === n),
    });
    ctx.row({
      measure: MEASURE,
      metric: "  vs BullMQ completed → next active (events; one script call)",
      value: lat(o),
      baseline: `BullMQ ${lat(be, 2)}`,
      ratio: `${fmtRatio(o.p50 / be.p50)} p50, ${fmtRatio(o.p99 / be.p99)} p99`,
    });
  } finally {
    await stack.close();
  }
}

async function startPickupBullmq(stack: Stack, redis: BenchRedis, concurrency: number) {
  const name = "pickup";
  const prefix = "bullpickup";
  const connection = { host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null };
  const queue = new Queue<{ command: string }>(name, { connection, prefix });
  stack.defer("close the BullMQ queue", async () => {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  });
  const events = new QueueEvents(name, { connection, prefix });
  stack.defer("close BullMQ queue events", () => events.close());
  const actives = new Map<string, number>();
  const ends = new Map<string, number>();
  const failed = new Set<string>();
  events.on("active", ({ jobId }) => {
    if (!actives.has(jobId)) actives.set(jobId, monoMs());
  });
  events.on("completed", ({ jobId }) => {
    if (!ends.has(jobId)) ends.set(jobId, monoMs());
  });
  events.on("failed", ({ jobId }) => {
    if (!ends.has(jobId)) ends.set(jobId, monoMs());
    failed.add(jobId);
  });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

  const script = fileURLToPath(new URL("./bullmq-pickup-worker.js", import.meta.url));
  const worker: ChildProcess = fork(script, [String(redis.port), name, prefix, String(concurrency)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  stack.defer("stop the BullMQ worker", () => stopProcess(worker));
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("exit", (code) => reject(new Error(`BullMQ worker exited with ${code}`)));
  });
  const report = () =>
    new Promise<{ spawns: Map<string, number>; exits: Map<string, number> }>((resolve) => {
      worker.once("message", (m) => {
        const r = m as { spawns: [string, number][]; exits: [string, number][] };
        resolve({ spawns: new Map(r.spawns), exits: new Map(r.exits) });
      });
      worker.send("report");
    });
  return { queue, actives, ends, failed, report };
}

// ---------------------------------------------------------------------------------------------
// queue-scale

const placementModule: typeof import("../src/launcher/placement.js") = await import(
  pathToFileURL(join(DIST, "launcher", "placement.js")).href
);

/** The simulated nodes: what each serves (every job class below has at least one taker). */
const SIM_NODES: { id: string; queues: string[]; labels: Record<string, string> }[] = [
  { id: "sim-1", queues: ["default", "batch"], labels: { zone: "a" } },
  { id: "sim-2", queues: ["default"], labels: { zone: "b" } },
  { id: "sim-3", queues: ["default", "gpu"], labels: { zone: "a", gpu: "a100" } },
  { id: "sim-4", queues: ["default", "batch"], labels: { zone: "b" } },
];
const USERS = 50;

interface JobMix {
  queues: string[];
  placementConstraints: { name: string; value?: string }[];
  user: string;
}

/** mulberry32: a small seeded PRNG, so every run queues the same mix. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The mixed queue: 60% `default`, 25% `batch`, 10% `gpu` (with the constraint gpu=a100), 5% either
 * `batch` or `default`; of the others a quarter each pinned to zone=a or zone=b; 50 users.
 */
function mixedJobs(n: number): JobMix[] {
  const rnd = prng(13);
  return Array.from({ length: n }, () => {
    const r = rnd();
    const z = rnd();
    const queues = r < 0.6 ? ["default"] : r < 0.85 ? ["batch"] : r < 0.95 ? ["gpu"] : ["batch", "default"];
    const placementConstraints =
      queues[0] === "gpu"
        ? [{ name: "gpu", value: "a100" }]
        : z < 0.25
          ? [{ name: "zone", value: "a" }]
          : z < 0.5
            ? [{ name: "zone", value: "b" }]
            : [];
    return { queues, placementConstraints, user: `user-${Math.floor(rnd() * USERS)}` };
  });
}

interface LoopResult {
  done: number;
  ms: number;
  latency: Summary;
  redis: ReturnType<typeof redisDelta>;
  errors: number;
}

/** Runs `op` from `loops` concurrent loops until `target` units are done or `maxMs` passed. */
async function driveLoops(
  redis: BenchRedis,
  loops: number,
  target: number,
  maxMs: number,
  op: (loop: number) => Promise<number>,
): Promise<LoopResult> {
  const lat: number[] = [];
  let done = 0;
  let errors = 0;
  let firstError: unknown;
  const before = await redisSnapshot(redis);
  const t0 = monoMs();
  await Promise.all(
    Array.from({ length: loops }, async (_, l) => {
      while (done < target && monoMs() - t0 < maxMs) {
        const a = monoMs();
        try {
          const got = await op(l);
          lat.push(monoMs() - a);
          if (got === 0) break; // nothing left that this loop may take
          done += got;
        } catch (err) {
          firstError ??= err;
          if (++errors > 100) throw firstError;
        }
      }
    }),
  );
  const ms = monoMs() - t0;
  const after = await redisSnapshot(redis);
  return { done, ms, latency: summarize(lat), redis: redisDelta(before, after), errors };
}

/** `redis-benchmark -q` output: "ZPOPMIN key: 81234.56 requests per second, p50=…". */
function benchmarkRate(out: string): number {
  const m = /: ([\d.]+) requests per second/.exec(out);
  return m ? Number(m[1]) : Number.NaN;
}

/** Redis CPU µs per unit of work over a loop's window. */
const cpuPer = (r: LoopResult) => (r.redis.cpuShare * (r.ms / 1000) * 1e6) / r.done;
const rate = (r: LoopResult) => r.done / (r.ms / 1000);

interface ScaleRun {
  classes: number;
  enqueuePerSec: number;
  claims: LoopResult;
  perNode: number[];
}

/**
 * One queue in its own prefix: `jobs` written through JobStore.create as a receiving node that sees
 * no candidate with room (so each is queued in its class), then claimed by the simulated nodes.
 */
async function scaleRun(
  ctx: Ctx,
  redis: BenchRedis,
  conns: ScriptedRedis[],
  prefix: string,
  jobs: readonly JobMix[],
  claimTarget: number,
  maxMs: number,
): Promise<ScaleRun> {
  const offlineAfterMs = 3_000;
  const keys = keysModule.fleetKeys(prefix);
  const nodeScripts = new scripts.NodeScripts(conns[0]!, keys);
  const register = async (id: string, fields: Record<string, string | number>) => ({
    nodeId: id,
    epoch: (
      await nodeScripts.registerNode(id, {
        host: id,
        ipv4: "127.0.0.1",
        port: "9",
        status: "Online",
        runningJobs: 0,
        ...fields,
      })
    ).epoch,
  });
  const receiver = await register("bench-receiver", { slots: 0, queues: "[]", labels: "{}" });
  const sims: { nodeId: string; epoch: number }[] = [];
  for (const s of SIM_NODES)
    sims.push(
      await register(s.id, {
        slots: 1_000_000,
        queues: JSON.stringify(s.queues),
        labels: JSON.stringify(s.labels),
      }),
    );
  let beating = true;
  const beatLoop = (async () => {
    while (beating) {
      await Promise.all(
        [receiver, ...sims].map((w) => nodeScripts.heartbeat(w, "Online", 0).catch(() => undefined)),
      );
      await sleep(500);
    }
  })();
  try {
    const writer = new jobStore.JobStore(conns[0]!, keys, 100_000);
    const classes = new Set<string>();
    const t0 = monoMs();
    await mapLimit(jobs, 256, async (mix, i) => {
      const cls = placementModule.queueClass(mix.queues, mix.placementConstraints, mix.user);
      classes.add(cls.id);
      const at = new Date().toISOString();
      const created = await writer.create(
        {
          id: `q${i.toString().padStart(7, "0")}`,
          name: "bench-scale",
          user: mix.user,
          command: "true",
          queues: mix.queues,
          placementConstraints: mix.placementConstraints,
          status: "Pending",
          submissionTime: at,
          lastUpdateTime: at,
        },
        receiver,
        [],
        {
          candidates: [],
          classId: cls.id,
          classDescriptor: cls.descriptor,
          queuedMessage: placementModule.waitingFor(mix.queues, mix.placementConstraints),
          userCapMessage: placementModule.waitingForUser(mix.user, 0),
          offlineAfterMs,
          perUserCap: 0,
        },
      );
      if (created.nodeId !== "") throw new Error(`job ${i} was placed on ${created.nodeId}, not queued`);
    });
    const enqueueMs = monoMs() - t0;
    const depth = await writer.queueDepth();
    const queued = [...depth.values()].reduce((a, b) => a + b, 0);
    ctx.log(
      `  [${prefix}] ${fmtNum(jobs.length)} jobs queued in ${(enqueueMs / 1000).toFixed(1)} s (${fmtNum(jobs.length / (enqueueMs / 1000))}/s through create_job), ` +
        `${classes.size} queue classes; depth ${[...depth.entries()].map(([q, d]) => `${q} ${fmtNum(d)}`).join(", ")}`,
    );
    if (queued !== jobs.length) throw new Error(`queue depth ${queued}, expected ${jobs.length}`);

    // Each simulated node has 2 claims of one job in flight (two slots freeing at once), on its own connection.
    const stores = sims.map((_, i) => new jobStore.JobStore(conns[i + 1]!, keys, 100_000));
    const perNode = new Array<number>(sims.length).fill(0);
    const claims = await driveLoops(redis, sims.length * 2, claimTarget, maxMs, async (l) => {
      const i = l % sims.length;
      const { claimed: got } = await stores[i]!.claim({
        node: sims[i]!,
        max: 1,
        perUserCap: 0,
        offlineAfterMs,
        nowIso: new Date().toISOString(),
        statusMessage: "",
      });
      perNode[i]! += got.length;
      return got.length;
    });
    const evalsha = claims.redis.command("evalsha");
    ctx.log(
      `  [${prefix}] claims: ${fmtNum(claims.done)} in ${(claims.ms / 1000).toFixed(2)} s by ${sims.length} nodes × 2 in flight ` +
        `(${perNode.join("/")}); ${fmtNum(rate(claims))}/s; call ${lat(claims.latency, 2)}; EVALSHA ${fmtNum(evalsha.usecPerCall, 0)} µs/call in Redis; ` +
        `Redis CPU ${(claims.redis.cpuShare * 100).toFixed(0)}% of a core${claims.errors ? `; ${claims.errors} errors` : ""}`,
    );
    return { classes: classes.size, enqueuePerSec: jobs.length / (enqueueMs / 1000), claims, perNode };
  } finally {
    beating = false;
    await beatLoop;
  }
}

export async function queueScale(ctx: Ctx): Promise<void> {
  const MEASURE = "queue-scale";
  const stack = new Stack(MEASURE);
  try {
    const n = ctx.full ? 100_000 : 10_000;
    // Claim a fifth of the queue (half in quick mode), so the queue stays near its size.
    const claimTarget = Math.floor(n * (ctx.full ? 0.2 : 0.5));
    const maxMs = ctx.full ? 20_000 : 8_000;
    // A private Redis: its CPU is this measure's alone.
    const redis = await startRedis(stack);
    const conns: ScriptedRedis[] = [];
    for (let i = 0; i < SIM_NODES.length + 1; i++)
      conns.push(scripts.defineScripts(await redis.connect(`bench-scale-${i}`, { autoPipelining: i === 0 })));
    const admin = await redis.connect("bench-scale-admin");

    const mixed = await scaleRun(ctx, redis, conns, "bench-scale", mixedJobs(n), claimTarget, maxMs);
    // The same size in one class (one user, default queue, no constraint): the claim's cost per class.
    const oneClass = await scaleRun(
      ctx,
      redis,
      conns,
      "bench-scale-1",
      Array.from({ length: n }, () => ({ queues: ["default"], placementConstraints: [], user: "user-0" })),
      claimTarget,
      maxMs,
    );

    // Baselines: a plain ZPOPMIN loop (same clients and concurrency) over a zset of n members, and
    // redis-benchmark ZPOPMIN (50 clients) over the same zset refilled.
    const zkey = "bench-scale:baseline:zset";
    const fill = async () => {
      await admin.del(zkey);
      for (let i = 0; i < n; i += 10_000) {
        const args: (string | number)[] = [];
        for (let j = i; j < Math.min(n, i + 10_000); j++) args.push(j, `q${j.toString().padStart(7, "0")}`);
        await admin.zadd(zkey, ...args);
      }
    };
    await fill();
    const pops = await driveLoops(redis, SIM_NODES.length * 2, claimTarget, maxMs, async (l) => {
      const r = await conns[(l % SIM_NODES.length) + 1]!.zpopmin(zkey, 1);
      return r.length / 2;
    });
    await fill();
    let benchRate = Number.NaN;
    try {
      const out = await execFileP("redis-benchmark", [
        ...["-h", "127.0.0.1", "-p", String(redis.port), "-q", "-n", String(claimTarget)],
        ...["ZPOPMIN", zkey],
      ]);
      benchRate = benchmarkRate(out.stdout);
    } catch (err) {
      ctx.log(`  redis-benchmark: ${(err as Error).message.split("\n")[0]}`);
    }
    await admin.del(zkey);
    ctx.log(
      `  ZPOPMIN loop: ${fmtNum(rate(pops))}/s, call ${lat(pops.latency, 2)}, Redis CPU ${(pops.redis.cpuShare * 100).toFixed(0)}%; ` +
        `redis-benchmark ZPOPMIN (50 clients): ${fmtNum(benchRate)}/s`,
    );

    const m = mixed.claims;
    ctx.row({
      measure: MEASURE,
      metric: `claims/s, ${fmtNum(n)} queued, ${mixed.classes} classes (4 nodes × 2 in flight, 1 job/claim)`,
      value: `${fmtNum(rate(m))}/s (call ${lat(m.latency, 2)})`,
      baseline: `ZPOPMIN loop ${fmtNum(rate(pops))}/s; redis-benchmark ${fmtNum(benchRate)}/s`,
      ratio: fmtRatio(rate(m) / rate(pops)),
      target: `≥ 2,000/s at 100,000 queued${ctx.full ? "" : " (full mode)"}`,
      ...(ctx.full ? { verdict: verdict(rate(m) >= 2_000 && m.done >= claimTarget) } : {}),
    });
    ctx.row({
      measure: MEASURE,
      metric: "  Redis CPU while claiming (INFO cpu), per claim",
      value: `${(m.redis.cpuShare * 100).toFixed(0)}% of a core, ${fmtNum(cpuPer(m))} µs/claim`,
      baseline: `ZPOPMIN ${(pops.redis.cpuShare * 100).toFixed(0)}%, ${fmtNum(cpuPer(pops), 1)} µs/pop`,
      ratio: fmtRatio(cpuPer(m) / cpuPer(pops)),
    });
    ctx.row({
      measure: MEASURE,
      metric: `  the same queue size in 1 class`,
      value: `${fmtNum(rate(oneClass.claims))}/s, ${fmtNum(cpuPer(oneClass.claims))} µs/claim`,
      baseline: `${mixed.classes} classes: ${fmtNum(cpuPer(m))} µs/claim`,
      ratio: fmtRatio(cpuPer(m) / cpuPer(oneClass.claims)),
    });
    ctx.row({
      measure: MEASURE,
      metric: "  enqueue (create_job, queued)",
      value: `${fmtNum(mixed.enqueuePerSec)} jobs/s (${mixed.classes} classes)`,
      baseline: `1 class ${fmtNum(oneClass.enqueuePerSec)} jobs/s`,
    });
  } finally {
    await stack.close();
  }
}
