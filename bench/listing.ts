// 11. Listing at scale: `GET /jobs` of 10,000 stored jobs (and 100,000 in full mode), whole and
// with filters, against reading the same jobs straight from Redis in the same run; the node's
// resident memory while it lists; and what Redis spends per job and per status event kept for
// resume (the events stream, LAUNCHER_EVENT_RETENTION).
// DESIGN: a node tracking 10,000 jobs lists them in under 250 ms and stays under 150 MB resident.
//
// Its own redis-server (so INFO memory counts only these jobs) and its own node. The jobs are
// written through the store's own scripts (`create_job`, `update_job`: every index the store keeps
// is there), owned by a simulated node that keeps heartbeating, before the real node starts.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Redis } from "ioredis";
import {
  type BenchRedis,
  type Ctx,
  DIST,
  fmtMB,
  fmtMs,
  fmtNum,
  fmtRatio,
  Http,
  jobStore,
  keysModule,
  mapLimit,
  now,
  procCpuMs,
  procMemory,
  Stack,
  scripts,
  sleep,
  startFleet,
  startRedis,
  summarize,
  verdict,
} from "./lib.js";

const MEASURE = "listing";
const PREFIX = "list";
const OWNER = "list-seed";
const USERS = 10;
const TARGET_MS = 250;
const TARGET_RSS_MB = 150;

const config: typeof import("../src/config.js") = await import(pathToFileURL(join(DIST, "config.js")).href);

/** The listings measured, each with what it selects of N seeded jobs. */
const VARIANTS: { name: string; path: string; share: string }[] = [
  { name: "all jobs", path: "/jobs", share: "100%" },
  { name: "statuses=Running", path: "/jobs?statuses=Running", share: "5%" },
  { name: "statuses=Finished,Failed", path: "/jobs?statuses=Finished,Failed", share: "90%" },
  { name: "tags=batch-3", path: "/jobs?tags=batch-3", share: "10%" },
  { name: "tags=rare", path: "/jobs?tags=rare", share: "1%" },
  {
    name: "fields=id,name,status,submissionTime",
    path: "/jobs?fields=id,name,status,submissionTime",
    share: "100%",
  },
  { name: "fields=id,status", path: "/jobs?fields=id,status", share: "100%" },
  { name: "user=user-3", path: "/jobs?user=user-3", share: "10%" },
];

/** Job i's status: 5% Running, 5% Pending, 10% Failed, 80% Finished. */
function statusOf(i: number): "Running" | "Pending" | "Failed" | "Finished" {
  const r = i % 20;
  return r === 0 ? "Running" : r === 1 ? "Pending" : r < 4 ? "Failed" : "Finished";
}

interface Seeder {
  seed(from: number, to: number): Promise<void>;
}

function seeder(
  conn: ReturnType<typeof scripts.defineScripts>,
  owner: { nodeId: string; epoch: number },
): Seeder {
  const store = new jobStore.JobStore(
    conn,
    keysModule.fleetKeys(PREFIX),
    Number(config.SETTINGS.eventRetention.default),
  );
  const base = Date.now() - 86_400_000;
  return {
    async seed(from, to) {
      await mapLimit(
        Array.from({ length: to - from }, (_, k) => from + k),
        256,
        async (i) => {
          const ms = base + i * 10;
          const at = new Date(ms).toISOString();
          const id = `${ms.toString(36).padStart(9, "0")}-${randomBytes(5).toString("hex")}`;
          const tags = ["bench", `batch-${i % 10}`];
          if (i % 100 === 7) tags.push("rare");
          await store.create(
            {
              id,
              name: `bench-listing-${i}`,
              user: `user-${i % USERS}`,
              command: "sleep",
              args: ["1"],
              environment: [{ name: "BENCH", value: String(i) }],
              tags,
              cluster: "Local",
              queues: ["default"],
              resourceProfile: "custom",
              stdoutFile: `/tmp/bench-listing/${id}.stdout`,
              stderrFile: `/tmp/bench-listing/${id}.stderr`,
              status: "Pending",
              submissionTime: at,
              lastUpdateTime: at,
            } as Parameters<typeof store.create>[0],
            owner,
            [],
          );
          const status = statusOf(i);
          const later = new Date(ms + 5_000).toISOString();
          if (status === "Running")
            await store.update(id, owner, { status, pid: 1000 + i, lastUpdateTime: later });
          else if (status === "Finished")
            await store.update(id, owner, { status, exitCode: 0, lastUpdateTime: later });
          else if (status === "Failed")
            await store.update(id, owner, {
              status,
              exitCode: 1,
              statusMessage: "exited with 1",
              lastUpdateTime: later,
            });
        },
      );
    },
  };
}

/** What Redis holds: used_memory, the job hashes (sampled), the events stream, and every other key. */
async function redisMemory(redis: BenchRedis, admin: Redis) {
  const keys = keysModule.fleetKeys(PREFIX);
  const used = Number((await redis.info("memory")).used_memory);
  const eventsBytes = Number(await admin.call("MEMORY", "USAGE", keys.events, "SAMPLES", "0"));
  const eventsLen = Number(await admin.xlen(keys.events));
  let cursor = "0";
  let jobKeys = 0;
  const jobSample: string[] = [];
  let indexBytes = 0;
  const indexNames: string[] = [];
  const jobPrefix = keys.scriptPrefixes.job;
  do {
    const [next, batch] = await admin.scan(cursor, "MATCH", `${PREFIX}:*`, "COUNT", 5000);
    cursor = next;
    for (const k of batch) {
      if (k.startsWith(jobPrefix)) {
        jobKeys++;
        if (jobSample.length < 500) jobSample.push(k);
      } else if (k !== keys.events) {
        indexBytes += Number(await admin.call("MEMORY", "USAGE", k, "SAMPLES", "0"));
        indexNames.push(k);
      }
    }
  } while (cursor !== "0");
  let sampleBytes = 0;
  for (const k of jobSample) sampleBytes += Number(await admin.call("MEMORY", "USAGE", k, "SAMPLES", "0"));
  return {
    used,
    eventsBytes,
    eventsLen,
    jobKeys,
    hashBytes: jobSample.length ? sampleBytes / jobSample.length : Number.NaN,
    indexBytes,
    indexKeys: indexNames.length,
  };
}

/** The same jobs straight from Redis: the id index, then pipelined HGETALLs 500 at a time. */
async function rawRead(conn: Redis, ids?: string[]): Promise<number> {
  const keys = keysModule.fleetKeys(PREFIX);
  const list = ids ?? (await conn.zrangebyscore(keys.jobsAll, "-inf", "+inf"));
  let n = 0;
  for (let i = 0; i < list.length; i += 500) {
    const pipe = conn.pipeline();
    for (const id of list.slice(i, i + 500)) pipe.hgetall(keys.job(id));
    n += ((await pipe.exec()) ?? []).length;
  }
  return n;
}

interface RoundFigures {
  variant: Map<string, number[]>;
  /** Node CPU and Redis CPU (ms) per listing, by variant. */
  nodeCpu: Map<string, number[]>;
  redisCpu: Map<string, number[]>;
  raw: number[];
  counts: Map<string, number>;
  rssMaxKB: number;
  hwmKB: number;
}

/** Rounds of every listing, interleaved with the raw read; node RSS sampled all along. */
async function measureListings(
  ctx: Ctx,
  http: Http,
  raw: Redis,
  redis: BenchRedis,
  pid: number,
  rounds: number,
  expectTotal: number,
): Promise<RoundFigures> {
  const variant = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  const nodeCpu = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  const redisCpu = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  const redisCpuMs = async () => {
    const cpu = await redis.info("cpu");
    return (Number(cpu.used_cpu_sys) + Number(cpu.used_cpu_user)) * 1000;
  };
  const counts = new Map<string, number>();
  const rawTimes: number[] = [];
  let rssMaxKB = 0;
  const sampler = setInterval(() => {
    rssMaxKB = Math.max(rssMaxKB, procMemory(pid).rssKB);
  }, 20);
  try {
    // One warm-up round (the node's code is cold), counted for the checks only.
    for (let r = -1; r < rounds; r++) {
      // With BENCH_PROFILE_DIR set, the node profiles the measured rounds (bench/cpu-profile.cjs).
      if (process.env.BENCH_PROFILE_DIR && r === 0) process.kill(pid, "SIGUSR2");
      for (const v of VARIANTS) {
        const r0 = await redisCpuMs();
        const c0 = procCpuMs(pid);
        const t = now();
        const text = await http.text(v.path);
        const ms = now() - t;
        const cpu = procCpuMs(pid) - c0;
        const redisMs = (await redisCpuMs()) - r0;
        if (r >= 0) {
          nodeCpu.get(v.name)!.push(cpu);
          redisCpu.get(v.name)!.push(redisMs);
        }
        if (r === -1) {
          const n = (JSON.parse(text) as { jobs: unknown[] }).jobs.length;
          counts.set(v.name, n);
          if (v.name === "all jobs" && n !== expectTotal)
            throw new Error(`GET /jobs returned ${n} jobs, expected ${expectTotal}`);
        } else variant.get(v.name)!.push(ms);
      }
      const t = now();
      const n = await rawRead(raw);
      if (r >= 0) rawTimes.push(now() - t);
      if (n !== expectTotal) throw new Error(`raw read gave ${n} jobs, expected ${expectTotal}`);
    }
    if (process.env.BENCH_PROFILE_DIR) process.kill(pid, "SIGUSR2");
  } finally {
    clearInterval(sampler);
  }
  const m = procMemory(pid);
  rssMaxKB = Math.max(rssMaxKB, m.rssKB);
  ctx.log(`  ${rounds} rounds of ${VARIANTS.length} listings at ${fmtNum(expectTotal)} jobs done`);
  return { variant, nodeCpu, redisCpu, raw: rawTimes, counts, rssMaxKB, hwmKB: m.hwmKB };
}

function reportListings(ctx: Ctx, n: number, f: RoundFigures, idleKB: number): void {
  const raw = summarize(f.raw);
  ctx.row({
    measure: MEASURE,
    metric: `${fmtNum(n)} jobs: raw ZRANGEBYSCORE + pipelined HGETALL, p50 / p99`,
    value: `${fmtMs(raw.p50, 1)} / ${fmtMs(raw.p99, 1)}`,
    baseline: "(the bench process, no HTTP)",
  });
  for (const v of VARIANTS) {
    const s = summarize(f.variant.get(v.name)!);
    const gated =
      n === 10_000 &&
      (v.name === "all jobs" ||
        v.name.startsWith("statuses") ||
        v.name.startsWith("tags") ||
        v.name.startsWith("fields"));
    ctx.row({
      measure: MEASURE,
      metric: `${fmtNum(n)} jobs: GET /jobs ${v.name === "all jobs" ? "" : `?${v.name} `}(${fmtNum(f.counts.get(v.name) ?? 0)} listed, n=${s.n}) p50 / p99`,
      value: `${fmtMs(s.p50, 1)} / ${fmtMs(s.p99, 1)}`,
      baseline: `raw ${fmtMs(raw.p50, 1)}; CPU p50: node ${fmtMs(summarize(f.nodeCpu.get(v.name)!).p50, 1)}, Redis ${fmtMs(summarize(f.redisCpu.get(v.name)!).p50, 1)}`,
      ratio: fmtRatio(s.p50 / raw.p50),
      ...(gated ? { target: `p50 < ${TARGET_MS} ms at 10,000`, verdict: verdict(s.p50 < TARGET_MS) } : {}),
    });
  }
  ctx.row({
    measure: MEASURE,
    metric: `${fmtNum(n)} jobs: node RSS while listing, max sampled (peak VmHWM)`,
    value: `${fmtMB(f.rssMaxKB)} (${fmtMB(f.hwmKB)})`,
    baseline: `idle ${fmtMB(idleKB)}`,
    ...(n === 10_000
      ? { target: `< ${TARGET_RSS_MB} MB at 10,000`, verdict: verdict(f.hwmKB < TARGET_RSS_MB * 1024) }
      : {}),
  });
}

function reportRedis(
  ctx: Ctx,
  n: number,
  before: Awaited<ReturnType<typeof redisMemory>>,
  after: Awaited<ReturnType<typeof redisMemory>>,
): void {
  const jobsDelta = after.used - before.used - (after.eventsBytes - before.eventsBytes);
  const perEvent = after.eventsBytes / Math.max(1, after.eventsLen);
  const retention = Number(config.SETTINGS.eventRetention.default);
  ctx.row({
    measure: MEASURE,
    metric: `${fmtNum(n)} jobs: Redis memory per job (INFO used_memory delta less the events stream)`,
    value: `${fmtNum(jobsDelta / n)} B`,
    baseline: `hash ${fmtNum(after.hashBytes)} B (MEMORY USAGE), indexes ${fmtNum(after.indexBytes / n)} B/job in ${after.indexKeys} keys`,
  });
  ctx.row({
    measure: MEASURE,
    metric: `${fmtNum(n)} jobs: status events kept (events stream), per event`,
    value: `${fmtNum(after.eventsLen)} events, ${fmtMB(after.eventsBytes / 1024)}: ${fmtNum(perEvent)} B/event`,
    baseline: `LAUNCHER_EVENT_RETENTION ${fmtNum(retention)} ≈ ${fmtMB((perEvent * retention) / 1024)}`,
  });
}

export async function listing(ctx: Ctx): Promise<void> {
  const stack = new Stack(MEASURE);
  try {
    const rounds10k = ctx.full ? 15 : 5;
    const rounds100k = 5;
    const redis = await startRedis(stack);
    const admin = await redis.connect("bench-list-admin");
    const raw = await redis.connect("bench-list-raw");
    const conn = scripts.defineScripts(await redis.connect("bench-list-seed", { autoPipelining: true }));
    const keys = keysModule.fleetKeys(PREFIX);
    const nodeScripts = new scripts.NodeScripts(conn, keys);
    const { epoch } = await nodeScripts.registerNode(OWNER, {
      host: "bench-listing",
      ipv4: "127.0.0.1",
      port: "9",
      status: "Online",
      runningJobs: 0,
    });
    const owner = { nodeId: OWNER, epoch };
    // The owner keeps beating, so the node never settles its Running and Pending jobs as lost.
    let beating = true;
    const beatLoop = (async () => {
      while (beating) {
        await nodeScripts.heartbeat(owner, "Online", 0).catch(() => undefined);
        await sleep(1_000);
      }
    })();
    stack.defer("stop the simulated owner's heartbeat", async () => {
      beating = false;
      await beatLoop;
    });

    const seed = seeder(conn, owner);
    const mem0 = await redisMemory(redis, admin);
    let t0 = now();
    await seed.seed(0, 10_000);
    ctx.log(`  10,000 jobs written through create_job/update_job in ${fmtMs(now() - t0, 0)}`);
    const mem10k = await redisMemory(redis, admin);

    const fleet = await startFleet(stack, ctx, {
      nodes: 1,
      haproxy: false,
      redisUrl: redis.url,
      prefix: PREFIX,
    });
    const node = fleet.nodes[0]!;
    const pid = node.pid!;
    const http = new Http(node.url, await fleet.adminToken("2h"), stack, 1);
    await sleep(1_000);
    const idle = procMemory(pid);
    ctx.log(`  node started: VmRSS ${fmtMB(idle.rssKB)}`);

    const f10k = await measureListings(ctx, http, raw, redis, pid, rounds10k, 10_000);
    reportListings(ctx, 10_000, f10k, idle.rssKB);
    reportRedis(ctx, 10_000, mem0, mem10k);

    if (ctx.full) {
      t0 = now();
      await seed.seed(10_000, 100_000);
      ctx.log(`  90,000 more jobs written in ${fmtMs(now() - t0, 0)}`);
      const mem100k = await redisMemory(redis, admin);
      const f100k = await measureListings(ctx, http, raw, redis, pid, rounds100k, 100_000);
      reportListings(ctx, 100_000, f100k, idle.rssKB);
      reportRedis(ctx, 100_000, mem0, mem100k);
    }
  } finally {
    await stack.close();
  }
}
