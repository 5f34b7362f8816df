// 4. Job throughput: N short jobs (`true`) submitted through HAProxy (round robin over the nodes
// when HAProxy is not installed) to a 3-node fleet, with C submissions in flight; done when every
// job's terminal status arrived on a status stream. Peers in the same run, same Redis, same
// machine, same command and concurrency: BullMQ with 3 worker processes (each job runs `true`
// through `/bin/sh -c`, as a node runs a job's `command`); the machine's limit, `posix_spawn` of
// `sh -c true` from one small Python process with 9 in flight (bench/spawn-paths.py, the shape of
// the supervisor daemon); and Node's own `spawn("true")` from one and from three processes (it
// forks the Node process, far slower than posix_spawn on some VMs, so it is not the limit).
// The floor (floor.ts): skeleton nodes behind their own HAProxy doing per job only what the
// contract requires, on the same machine in the same rounds: the most any launcher built of these
// parts gets here, and the fleet's rate as a share of it.
// Also the cost model's figures: CPU per job per component (nodes, HAProxy, supervisor daemons,
// the jobs, Redis), Redis commands per job (INFO commandstats) and Redis bytes per job (INFO memory).
// DESIGN: at least 1.5x BullMQ's throughput with 3 workers, and at least 0.6x the posix_spawn limit.
import { type ChildProcess, fork, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import { type Floor, startFloor } from "./floor.js";
import {
  type BenchRedis,
  type Ctx,
  execFileP,
  fmtMs,
  fmtNum,
  fmtRatio,
  Http,
  haproxyPath,
  keysModule,
  mapLimit,
  monoMs,
  pidsMatching,
  procChildrenCpuMs,
  procCpuMs,
  procMainThreadCpuMs,
  redisDelta,
  redisSnapshot,
  Stack,
  type Summary,
  sleep,
  stopProcess,
  submit,
  summarize,
  supervisorDaemonsCpu,
  until,
  verdict,
  watchTerminalStatuses,
} from "./lib.js";

const MEASURE = "throughput";

interface RunResult {
  rate: number;
  latency: Summary;
  failed: number;
  /** CPU ms per job: the processes that run jobs, the processes they spawn, Redis. */
  cpu?: { parents: number; children: number; redis: number };
  /** The fleet only: its CPU per job by component, Redis commands and bytes per job. */
  cost?: FleetCost;
}

interface FleetCost {
  /** CPU ms per job; nodesMain is the nodes' main threads only (the rest: libuv pool, GC threads). */
  nodes: number;
  nodesMain: number;
  haproxy: number;
  daemons: number;
  jobs: number;
  redis: number;
  /** Redis calls per job by command (commands run inside scripts count), over the whole run. */
  calls: Record<string, number>;
  /** Redis used_memory growth per job, and one finished job's hash (MEMORY USAGE), in bytes. */
  memPerJob: number;
  jobHashBytes: number;
  /** Status events per job written to the events stream, and stream bytes per event. */
  eventsPerJob: number;
  bytesPerEvent: number;
}

/** CPU used by `pids` (themselves and their reaped children) and by Redis, for per-job figures. */
async function cpuMeter(redis: BenchRedis, pids: (number | "self")[], moreChildren: () => number = () => 0) {
  const read = async () => ({
    parents: pids.reduce<number>(
      (s, p) =>
        s + (p === "self" ? process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000 : procCpuMs(p)),
      0,
    ),
    children: pids.reduce<number>((s, p) => s + procChildrenCpuMs(p), 0) + moreChildren(),
    redis: (await redisSnapshot(redis)).cpuSec * 1000,
  });
  const before = await read();
  return async (jobs: number) => {
    const after = await read();
    return {
      parents: (after.parents - before.parents) / jobs,
      children: (after.children - before.children) / jobs,
      redis: (after.redis - before.redis) / jobs,
    };
  };
}

function result(
  n: number,
  starts: Map<string, number>,
  ends: Map<string, number>,
  failed: number,
): RunResult {
  const lat: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const [id, t0] of starts) {
    const t1 = ends.get(id)!;
    lat.push(t1 - t0);
    first = Math.min(first, t0);
    last = Math.max(last, t1);
  }
  return { rate: n / ((last - first) / 1000), latency: summarize(lat), failed };
}

async function waitAll(
  what: string,
  ids: () => Iterable<string>,
  ends: Map<string, number>,
  timeoutMs: number,
) {
  await until(what, () => [...ids()].every((id) => ends.has(id)), timeoutMs, 20);
}

export async function throughput(ctx: Ctx): Promise<void> {
  const stack = new Stack(MEASURE);
  try {
    const n = ctx.full ? 1_000 : 200;
    // 9 in flight: 3 BullMQ workers x 3, and 3 spawner processes x 3.
    const concurrency = 9;
    const rounds = ctx.full ? 2 : 1;
    const { redis, fleet, prefix, token, haproxy: useHaproxy } = await ctx.shared();
    const entry = useHaproxy
      ? [new Http(fleet.lbUrl!, token, stack, concurrency)]
      : fleet.nodes.map((node) => new Http(node.url, token, stack, concurrency));
    ctx.log(
      `  submitting through ${useHaproxy ? `HAProxy (${fleet.lbUrl})` : "the nodes round robin (no haproxy)"}`,
    );

    // Terminal statuses arrive on one status stream (node-1), which sees every job of the fleet.
    const finalStatus = new Map<string, string>();
    const failures = new Map<string, string>();
    const ends = await watchTerminalStatuses(stack, fleet.nodes[0]!.url, token, (msg) => {
      finalStatus.set(msg.id, String(msg.status));
      if (msg.status !== "Finished") failures.set(msg.id, `${msg.status} ${String(msg.statusMessage ?? "")}`);
    });

    const nodePids = fleet.nodes.map((x) => x.pid!);
    // HAProxy's process (its config lives in the fleet's scratch dir): part of the fleet's cost.
    const haproxyPids = pidsMatching(
      (c) => /(^|\/)haproxy$/.test(c.split("\0")[0]!) && c.includes(fleet.scratchPath),
    );
    const keys = keysModule.fleetKeys(prefix);
    const memConn = await redis.connect("bench-tp-memory");
    const usedMemory = async () => Number((await redis.info("memory")).used_memory);
    const submitted: string[] = [];
    const ours = async (count: number): Promise<RunResult> => {
      const starts = new Map<string, number>();
      const cpu0 = fleetCpu();
      const r0 = await redisSnapshot(redis);
      const mem0 = await usedMemory();
      const xlen0 = Number(await memConn.xlen(keys.events));
      await mapLimit(Array.from({ length: count }), concurrency, async (_, i) => {
        const t0 = monoMs();
        const job = await submit(entry[i % entry.length]!, { command: "true", name: "bench-throughput" });
        starts.set(job.id, t0);
        submitted.push(job.id);
      });
      await waitAll("every job to finish", () => starts.keys(), ends, 120_000);
      const cpu1 = fleetCpu();
      const rd = redisDelta(r0, await redisSnapshot(redis));
      const mem1 = await usedMemory();
      const xlen1 = Number(await memConn.xlen(keys.events));
      const streamBytes = Number(await memConn.memory("USAGE", keys.events, "SAMPLES", "0"));
      const jobHashBytes = Number(await memConn.memory("USAGE", keys.job(submitted.at(-1)!)));
      const failed = [...starts.keys()].filter((id) => finalStatus.get(id) !== "Finished").length;
      const per = (k: keyof typeof cpu0) => (cpu1[k] - cpu0[k]) / count;
      const cost: FleetCost = {
        nodes: per("nodes"),
        nodesMain: per("nodesMain"),
        haproxy: per("haproxy"),
        daemons: per("daemons"),
        jobs: per("jobs"),
        redis: (rd.cpuSec * 1000) / count,
        calls: Object.fromEntries(Object.entries(rd.calls).map(([k, v]) => [k, v / count])),
        memPerJob: (mem1 - mem0) / count,
        jobHashBytes,
        eventsPerJob: (xlen1 - xlen0) / count,
        bytesPerEvent: streamBytes / Math.max(1, xlen1),
      };
      return {
        ...result(count, starts, ends, failed),
        cpu: { parents: cost.nodes + cost.haproxy, children: cost.daemons + cost.jobs, redis: cost.redis },
        cost,
      };
    };
    function fleetCpu() {
      const d = supervisorDaemonsCpu(fleet.scratchPath);
      const sum = (pids: number[]) =>
        pids.reduce((s, p) => {
          try {
            return s + procCpuMs(p);
          } catch {
            return s;
          }
        }, 0);
      return {
        nodes: sum(nodePids),
        nodesMain: nodePids.reduce((s, p) => s + procMainThreadCpuMs(p), 0),
        haproxy: sum(haproxyPids),
        daemons: d.own,
        jobs: d.jobs,
      };
    }

    // BullMQ: 3 worker processes on the same Redis under another prefix.
    const bull = await startBullmq(stack, redis, concurrency / 3);
    const bullmq = async (count: number): Promise<RunResult> => {
      const starts = new Map<string, number>();
      const failedBefore = bull.failed();
      const meter = await cpuMeter(redis, bull.pids);
      await mapLimit(Array.from({ length: count }), concurrency, async () => {
        const t0 = monoMs();
        const job = await bull.queue.add("job", { command: "true" });
        starts.set(job.id!, t0);
      });
      await waitAll("every BullMQ job to complete", () => starts.keys(), bull.ends, 120_000);
      const cpu = await meter(count);
      return { ...result(count, starts, bull.ends, bull.failed() - failedBefore), cpu };
    };

    // The floor (bench/floor.ts): skeleton nodes that do per job only what the contract requires.
    const floorFleet = useHaproxy ? await startFloor(stack, redis, haproxyPath()!) : undefined;
    const floor = floorFleet && (await floorRunner(stack, floorFleet, redis, concurrency));

    const raw = async (count: number): Promise<RunResult> => {
      const starts = new Map<string, number>();
      const ends = new Map<string, number>();
      let bad = 0;
      const meter = await cpuMeter(redis, ["self"]);
      await mapLimit(Array.from({ length: count }), concurrency, async (_, i) => {
        const t0 = monoMs();
        const code = await new Promise<number | null>((resolve, reject) => {
          const child = spawn("true", [], { stdio: "ignore" });
          child.once("error", reject);
          child.once("exit", resolve);
        });
        if (code !== 0) bad++;
        starts.set(String(i), t0);
        ends.set(String(i), monoMs());
      });
      const cpu = await meter(count);
      return { ...result(count, starts, ends, bad), cpu };
    };

    // The same spread over 3 processes (a node, a BullMQ worker: each spawns from its own event loop).
    const spawnerScript = fileURLToPath(new URL("./spawner.js", import.meta.url));
    const raw3 = async (count: number): Promise<RunResult> => {
      const procs = Array.from({ length: 3 }, () =>
        fork(spawnerScript, [String(Math.ceil(count / 3)), String(concurrency / 3)], {
          stdio: ["ignore", "inherit", "inherit", "ipc"],
        }),
      );
      stack.defer("stop spawners", () => Promise.all(procs.map((p) => stopProcess(p))));
      await Promise.all(procs.map((p) => new Promise((r) => p.once("message", r))));
      const replies = await Promise.all(
        procs.map((p) => {
          const reply = new Promise<{ times: [number, number][]; failed: number }>((resolve, reject) => {
            p.once("message", (m) => resolve(m as { times: [number, number][]; failed: number }));
            p.once("exit", () => reject(new Error("spawner exited early")));
          });
          p.send("go");
          return reply;
        }),
      );
      const starts = new Map<string, number>();
      const ends = new Map<string, number>();
      for (const [pi, r] of replies.entries()) {
        for (const [i, [a, b]] of r.times.entries()) {
          starts.set(`${pi}-${i}`, a);
          ends.set(`${pi}-${i}`, b);
        }
      }
      return result(
        starts.size,
        starts,
        ends,
        replies.reduce((s, r) => s + r.failed, 0),
      );
    };

    // The machine's limit: posix_spawn of `sh -c true` from one small process, 9 in flight
    // (bench/spawn-paths.py, also used by the privileged measure; one round per call here, so the
    // rounds interleave with the others').
    const spawnPaths = fileURLToPath(new URL("../../bench/spawn-paths.py", import.meta.url));
    const posix = async (count: number) => {
      const { stdout } = await execFileP(
        "python3",
        [spawnPaths, "--ways", "posix_spawn", "--rounds", "1", String(count)],
        { timeout: 120_000 },
      );
      return (JSON.parse(stdout) as { posix_spawn: { rate: number; cpuMs: number; ownCpuMs: number } })
        .posix_spawn;
    };

    // Warm up each (JIT, connections, first spawns).
    await ours(6);
    await floor?.(6);
    await bullmq(6);
    await raw(6);

    const res: Record<"ours" | "floor" | "bullmq" | "raw" | "raw3", RunResult[]> = {
      ours: [],
      floor: [],
      bullmq: [],
      raw: [],
      raw3: [],
    };
    const limits: { rate: number; cpuMs: number; ownCpuMs: number }[] = [];
    // With BENCH_PROFILE_DIR set, the nodes profile the last fleet round (bench/cpu-profile.cjs).
    const profile = (r: number) => {
      if (process.env.BENCH_PROFILE_DIR && r === rounds - 1)
        for (const pid of nodePids) process.kill(pid, "SIGUSR2");
    };
    for (let r = 0; r < rounds; r++) {
      profile(r);
      res.ours.push(await ours(n));
      profile(r);
      await sleep(500);
      if (floor) res.floor.push(await floor(n));
      await sleep(500);
      res.bullmq.push(await bullmq(n));
      await sleep(500);
      res.raw.push(await raw(n));
      await sleep(500);
      res.raw3.push(await raw3(n));
      await sleep(500);
      limits.push(await posix(n));
      ctx.log(
        `  round ${r + 1}: fleet ${fmtNum(res.ours.at(-1)!.rate, 1)} jobs/s,` +
          (floor ? ` floor ${fmtNum(res.floor.at(-1)!.rate, 1)} jobs/s,` : "") +
          ` BullMQ ${fmtNum(res.bullmq.at(-1)!.rate, 1)} jobs/s,` +
          ` posix_spawn ${fmtNum(limits.at(-1)!.rate, 1)}/s (1 process),` +
          ` Node spawn ${fmtNum(res.raw.at(-1)!.rate, 1)}/s (1 process), ${fmtNum(res.raw3.at(-1)!.rate, 1)}/s (3 processes)`,
      );
    }
    // The stream sees every job of the fleet (other measures' too): only this measure's count.
    const firstFailure = submitted.find((id) => failures.has(id));
    if (firstFailure)
      ctx.log(`  a fleet job that did not finish: ${firstFailure}: ${failures.get(firstFailure)}`);
    const owners = await ownerCounts(redis, prefix, submitted);
    ctx.log(
      `  jobs per owner: ${Object.entries(owners)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );

    const medianOf = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    };
    const median = (rs: RunResult[]) => medianOf(rs.map((x) => x.rate));
    const last = (rs: RunResult[]) => rs.at(-1)!;
    const o = median(res.ours);
    const b = median(res.bullmq);
    const w = median(res.raw);
    const w3 = median(res.raw3);
    const lim = medianOf(limits.map((x) => x.rate));
    const limCpu = limits.at(-1)!;
    const lat = (x: RunResult) => `p50 ${fmtMs(x.latency.p50, 1)} p99 ${fmtMs(x.latency.p99, 1)}`;
    const fails = (rs: RunResult[]) => rs.reduce((s, x) => s + x.failed, 0);
    ctx.row({
      measure: MEASURE,
      metric: `fleet, 3 nodes (N=${n}, ${concurrency} in flight)`,
      value: `${fmtNum(o, 1)} jobs/s`,
      baseline: `BullMQ 3 workers ${fmtNum(b, 1)} jobs/s`,
      ratio: fmtRatio(o / b),
      target: "≥ 1.5x BullMQ",
      verdict: verdict(o / b >= 1.5 && fails(res.ours) === 0),
    });
    ctx.row({
      measure: MEASURE,
      metric: "fleet vs the machine's limit",
      value: `${fmtNum(o, 1)} jobs/s`,
      baseline: `posix_spawn sh -c true ${fmtNum(lim, 1)}/s (1 proc, ${concurrency} in flight)`,
      ratio: fmtRatio(o / lim),
      target: "≥ 0.6x posix_spawn",
      verdict: verdict(o / lim >= 0.6 && fails(res.ours) === 0),
    });
    if (res.floor.length > 0) {
      const f = median(res.floor);
      const fc = last(res.floor).cost!;
      const oc = last(res.ours).cost!;
      const sumCost = (x: FleetCost) => x.nodes + x.haproxy + x.daemons + x.jobs + x.redis;
      const evalsha = (x: FleetCost) => (x.calls.evalsha ?? 0).toFixed(2);
      ctx.row({
        measure: MEASURE,
        metric: "  the floor: the contract's least work, 3 skeleton nodes",
        value: `${fmtNum(f, 1)} jobs/s`,
        baseline: `BullMQ 3 workers ${fmtNum(b, 1)} jobs/s; posix_spawn ${fmtNum(lim, 1)}/s`,
        ratio: `${fmtRatio(f / b)} BullMQ; ${fmtRatio(f / lim)} posix_spawn`,
      });
      ctx.row({
        measure: MEASURE,
        metric: "  fleet vs the floor",
        value: `${fmtNum(o, 1)} jobs/s`,
        baseline: `floor ${fmtNum(f, 1)} jobs/s`,
        ratio: fmtRatio(o / f),
      });
      ctx.row({
        measure: MEASURE,
        metric: "  floor CPU per job by component",
        value: `${sumCost(fc).toFixed(2)} ms = nodes ${fc.nodes.toFixed(2)} + HAProxy ${fc.haproxy.toFixed(2)} + supervisors ${fc.daemons.toFixed(2)} + jobs ${fc.jobs.toFixed(2)} + Redis ${fc.redis.toFixed(2)}; EVALSHA ${evalsha(fc)}/job`,
        baseline: `fleet ${sumCost(oc).toFixed(2)} ms; EVALSHA ${evalsha(oc)}/job`,
        ratio: `fleet ${fmtRatio(sumCost(oc) / sumCost(fc))} the floor's CPU`,
      });
    }
    ctx.row({
      measure: MEASURE,
      metric: "  BullMQ vs the limit",
      value: `${fmtNum(b, 1)} jobs/s`,
      baseline: `posix_spawn ${fmtNum(lim, 1)}/s`,
      ratio: fmtRatio(b / lim),
    });
    ctx.row({
      measure: MEASURE,
      metric: "  Node spawn (1 proc / 3 procs) vs the limit",
      value: `${fmtNum(w, 1)} / ${fmtNum(w3, 1)} /s`,
      baseline: `posix_spawn ${fmtNum(lim, 1)}/s`,
      ratio: `${fmtRatio(w / lim)} / ${fmtRatio(w3 / lim)}; fleet ${fmtRatio(o / w)} / ${fmtRatio(o / w3)} of them`,
    });
    ctx.row({
      measure: MEASURE,
      metric: "fleet submit→finished",
      value: lat(last(res.ours)),
      baseline: `BullMQ ${lat(last(res.bullmq))}`,
      ratio: fmtRatio(last(res.ours).latency.p50 / last(res.bullmq).latency.p50),
    });
    const cpu = (x: RunResult) =>
      x.cpu
        ? `${(x.cpu.parents + x.cpu.children + x.cpu.redis).toFixed(1)} ms (${x.cpu.parents.toFixed(1)} + ${x.cpu.children.toFixed(1)} + ${x.cpu.redis.toFixed(1)})`
        : "n/a";
    ctx.log(
      `  CPU per job (runner processes + their children + Redis): fleet ${cpu(last(res.ours))}, BullMQ ${cpu(last(res.bullmq))},` +
        ` Node spawn ${cpu(last(res.raw))}, posix_spawn ${limCpu.cpuMs.toFixed(2)} ms`,
    );
    ctx.row({
      measure: MEASURE,
      metric: "  CPU per job: runners + spawned + Redis",
      value: `fleet ${cpu(last(res.ours))}`,
      baseline: `BullMQ ${cpu(last(res.bullmq))}`,
      ratio: `Node spawn ${cpu(last(res.raw))}; posix_spawn ${limCpu.cpuMs.toFixed(2)} ms (${limCpu.ownCpuMs.toFixed(2)} + ${(limCpu.cpuMs - limCpu.ownCpuMs).toFixed(2)})`,
    });
    const c = last(res.ours).cost!;
    const total = c.nodes + c.haproxy + c.daemons + c.jobs + c.redis;
    ctx.row({
      measure: MEASURE,
      metric: "  fleet CPU per job by component",
      value: `${total.toFixed(2)} ms = nodes ${c.nodes.toFixed(2)} (main threads ${c.nodesMain.toFixed(2)}) + HAProxy ${c.haproxy.toFixed(2)} + daemons ${c.daemons.toFixed(2)} + jobs ${c.jobs.toFixed(2)} + Redis ${c.redis.toFixed(2)}`,
      baseline: `posix_spawn ${limCpu.cpuMs.toFixed(2)} ms`,
      ratio: `${fmtRatio(total / limCpu.cpuMs)} of the limit's CPU`,
    });
    const top = Object.entries(c.calls)
      .sort((x, y) => y[1] - x[1])
      .filter(([, v]) => v >= 0.05);
    const allCalls = Object.values(c.calls).reduce((s2, v) => s2 + v, 0);
    ctx.log(
      `  Redis per job: ${top.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}; ${fmtNum(c.memPerJob)} B used_memory growth,` +
        ` job hash ${fmtNum(c.jobHashBytes)} B, ${c.eventsPerJob.toFixed(2)} events of ~${fmtNum(c.bytesPerEvent)} B`,
    );
    ctx.row({
      measure: MEASURE,
      metric: "  Redis commands per job (INFO commandstats)",
      value: `${allCalls.toFixed(1)} (incl. inside scripts): ${top
        .slice(0, 6)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(", ")}`,
      baseline: `EVALSHA ${(c.calls.evalsha ?? 0).toFixed(2)}/job`,
      ratio: `${(c.redis * 1000).toFixed(0)} µs Redis CPU/job`,
    });
    ctx.row({
      measure: MEASURE,
      metric: "  Redis bytes per job (INFO memory)",
      value: `${fmtNum(c.memPerJob)} B used_memory growth`,
      baseline: `job hash ${fmtNum(c.jobHashBytes)} B (MEMORY USAGE)`,
      ratio: `${c.eventsPerJob.toFixed(2)} events × ~${fmtNum(c.bytesPerEvent)} B`,
    });
    ctx.row({
      measure: MEASURE,
      metric: "Node spawn→exit (1 proc / 3 procs)",
      value: `${lat(last(res.raw))} / ${lat(last(res.raw3))}`,
      baseline: `failed: fleet ${fails(res.ours)}, BullMQ ${fails(res.bullmq)}, raw ${fails(res.raw) + fails(res.raw3)}`,
    });
  } finally {
    await stack.close();
  }
}

/** Runs rounds on the floor: the same submissions and wait as the fleet's, CPU per job by component. */
async function floorRunner(stack: Stack, floor: Floor, redis: BenchRedis, concurrency: number) {
  const failures = new Set<string>();
  const ends = await watchTerminalStatuses(stack, floor.nodeUrl, floor.token, (msg) => {
    if (msg.status !== "Finished" || msg.exitCode !== 0) failures.add(msg.id);
  });
  const entry = new Http(floor.url, floor.token, stack, concurrency);
  return async (count: number): Promise<RunResult> => {
    const starts = new Map<string, number>();
    const c0 = floor.cpu();
    const r0 = await redisSnapshot(redis);
    await mapLimit(Array.from({ length: count }), concurrency, async () => {
      const t0 = monoMs();
      const job = await submit(entry, { command: "true", name: "bench-floor" });
      starts.set(job.id, t0);
    });
    await waitAll("every floor job to finish", () => starts.keys(), ends, 120_000);
    const c1 = floor.cpu();
    const rd = redisDelta(r0, await redisSnapshot(redis));
    const per = (k: keyof typeof c0) => (c1[k] - c0[k]) / count;
    const failed = [...starts.keys()].filter((id) => failures.has(id)).length;
    return {
      ...result(count, starts, ends, failed),
      cpu: {
        parents: per("nodes") + per("haproxy"),
        children: per("supervisors") + per("jobs"),
        redis: (rd.cpuSec * 1000) / count,
      },
      cost: {
        nodes: per("nodes"),
        nodesMain: Number.NaN,
        haproxy: per("haproxy"),
        daemons: per("supervisors"),
        jobs: per("jobs"),
        redis: (rd.cpuSec * 1000) / count,
        calls: Object.fromEntries(Object.entries(rd.calls).map(([k, v]) => [k, v / count])),
        memPerJob: Number.NaN,
        jobHashBytes: Number.NaN,
        eventsPerJob: Number.NaN,
        bytesPerEvent: Number.NaN,
      },
    };
  };
}

async function ownerCounts(
  redis: BenchRedis,
  prefix: string,
  ids: string[],
): Promise<Record<string, number>> {
  const conn = await redis.connect("bench-tp-owners");
  const p = conn.pipeline();
  for (const id of ids) p.hget(`${prefix}:job:${id}`, "owner");
  const out: Record<string, number> = {};
  for (const [, owner] of (await p.exec()) ?? []) out[String(owner)] = (out[String(owner)] ?? 0) + 1;
  return out;
}

async function startBullmq(stack: Stack, redis: BenchRedis, concurrency: number) {
  const name = "bench";
  const prefix = "bull";
  const connection = { host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null };
  const queue = new Queue<{ command: string }>(name, { connection, prefix });
  stack.defer("close the BullMQ queue", async () => {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  });
  const events = new QueueEvents(name, { connection, prefix });
  stack.defer("close BullMQ queue events", () => events.close());
  const ends = new Map<string, number>();
  let failed = 0;
  events.on("completed", ({ jobId }) => {
    if (!ends.has(jobId)) ends.set(jobId, monoMs());
  });
  events.on("failed", ({ jobId }) => {
    if (!ends.has(jobId)) {
      ends.set(jobId, monoMs());
      failed++;
    }
  });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

  const script = fileURLToPath(new URL("./bullmq-worker.js", import.meta.url));
  const workers: ChildProcess[] = [];
  stack.defer("stop BullMQ workers", () => Promise.all(workers.map((w) => stopProcess(w))));
  for (let i = 0; i < 3; i++) {
    const w = fork(script, [String(redis.port), name, prefix, String(concurrency)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    workers.push(w);
  }
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.once("message", () => resolve());
          w.once("exit", (code) => reject(new Error(`BullMQ worker exited with ${code}`)));
        }),
    ),
  );
  return { queue, ends, failed: () => failed, pids: workers.map((w) => w.pid!) };
}
