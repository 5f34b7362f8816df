// 2. Status fan-out: status changes written through the real `update_job` script (stream + publish)
// by a registered owner, delivered through node C's status bus to an HTTP status stream
// (`GET /jobs/*/status` on node C). Latency is from just before the write is sent to the arrival of
// the event at the streaming client; every change is counted, so lost and duplicated events show.
// Baseline at the same moments: the writer also PUBLISHes a plain message with every change, which a
// plain subscriber receives; that subscriber also listens on the fleet's events channel, which
// splits our latency into "script → pub/sub" and "node C → HTTP client". The hop's floor: the raw
// messages also go through the raw relay (raw-relay.ts), one process that only writes each to its
// HTTP client, as node C does with ours.
// Redis baseline: `redis-benchmark` PUBLISH (and SET) in the same run, so the changes/s carried and
// the maximum print as shares of what one Redis takes, and its CPU per request beside ours per change.
// DESIGN: at 5,000 changes/s, p99 within 1.25x of raw pub/sub's p99 at the same moments and under
// 10 ms, zero lost or duplicated.
// With BENCH_PROFILE_DIR set, every node writes a CPU profile and its GC pauses per phase.
import { fork } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { PhaseReport, PhaseRequest, WriterData } from "./fanout-writer.js";
import {
  type Ctx,
  fmtMs,
  fmtNum,
  fmtPct,
  fmtRatio,
  Http,
  jobStore,
  keysModule,
  machineCpuTicks,
  monoMs,
  procCpuMs,
  procFaults,
  procMainThreadWaitMs,
  redisBenchmark,
  redisDelta,
  redisSnapshot,
  Stack,
  scripts,
  sleep,
  stopProcess,
  summarize,
  verdict,
} from "./lib.js";

const MEASURE = "fan-out";
const JOBS = 20;
const WRITER = "bench-writer";
/**
 * Buckets of the same phase's copies: raw pub/sub (baseline), the events channel itself, and raw
 * pub/sub carried by the raw relay to its HTTP client (the hop's baseline).
 */
const RAW = 1_000;
const BUS = 2_000;
const RELAY = 3_000;

/** A node's pauses as its /metrics reports them (prom-client's process metrics). */
interface Pauses {
  /** GC pauses since the node started: count, total ms, and how many took over 10 ms. */
  gc: { count: number; ms: number; over10ms: number };
  /**
   * Event-loop delay since the previous scrape (prom-client resets it at each), beyond the
   * sampling timer's own period: Node's histogram records whole timer intervals, so its minimum is
   * that period (10 ms), which is subtracted here.
   */
  lag: { p99: number; max: number };
}

async function scrapePauses(url: string): Promise<Pauses> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  const count = sum(/^nodejs_gc_duration_seconds_count\{[^}]*\} (\S+)$/gm);
  const one = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN) * 1000;
  return {
    gc: {
      count,
      ms: sum(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm) * 1000,
      over10ms: count - sum(/^nodejs_gc_duration_seconds_bucket\{le="0\.01",[^}]*\} (\S+)$/gm),
    },
    lag: {
      p99: one("nodejs_eventloop_lag_p99_seconds") - one("nodejs_eventloop_lag_min_seconds"),
      max: one("nodejs_eventloop_lag_max_seconds") - one("nodejs_eventloop_lag_min_seconds"),
    },
  };
}

interface Received {
  latencies: number[];
  counts: Map<number, number>;
}

export async function fanout(ctx: Ctx): Promise<void> {
  const stack = new Stack(MEASURE);
  try {
    const durationMs = ctx.full ? 10_000 : 2_000;
    const { redis, fleet, prefix, token } = await ctx.shared();
    const keys = keysModule.fleetKeys(prefix);

    // Redis baseline, before anything else runs: PUBLISH to a channel one connection listens on (as
    // a status event reaches node subscribers), and SET; 50 clients, no pipelining.
    const benchN = ctx.full ? 200_000 : 40_000;
    const benchChannel = `${prefix}:bench:capacity`;
    const benchSub = await redis.connect("bench-fanout-capacity-subscriber");
    await benchSub.subscribe(benchChannel);
    const pubBench = await redisBenchmark(redis, benchN, ["PUBLISH", benchChannel, "x".repeat(200)]);
    const setBench = await redisBenchmark(redis, benchN, ["-t", "set"]);
    await benchSub.unsubscribe(benchChannel);
    const pubCapacity = Object.values(pubBench.rates)[0] ?? Number.NaN;
    const setCapacity = setBench.rates.SET ?? Number.NaN;
    ctx.log(
      `  redis-benchmark (-n ${benchN}, 50 clients): PUBLISH (200 B, 1 subscriber) ${fmtNum(pubCapacity)}/s at ${pubBench.cpuUsPerRequest.toFixed(1)} µs Redis CPU each,` +
        ` SET ${fmtNum(setCapacity)}/s at ${setBench.cpuUsPerRequest.toFixed(1)} µs`,
    );
    ctx.row({
      measure: MEASURE,
      metric: "baseline: redis-benchmark PUBLISH (1 subscriber) / SET",
      value: `${fmtNum(pubCapacity)} / ${fmtNum(setCapacity)} req/s`,
      baseline: `${pubBench.cpuUsPerRequest.toFixed(1)} / ${setBench.cpuUsPerRequest.toFixed(1)} µs Redis CPU each`,
    });

    // The writer: a registered node identity (epoch from register_node) that keeps heartbeating,
    // so that peers neither see it as lost nor settle its jobs.
    const cmd = scripts.defineScripts(await redis.connect("bench-fanout-owner"));
    const nodeScripts = new scripts.NodeScripts(cmd, keys);
    const { epoch } = await nodeScripts.registerNode(WRITER, {
      host: "bench",
      ipv4: "127.0.0.1",
      port: "9",
      status: "Online",
      runningJobs: 0,
    });
    const owner = { nodeId: WRITER, epoch };
    let beating = true;
    const beat = async () => {
      while (beating) {
        await nodeScripts.heartbeat(owner, "Online", 0).catch(() => undefined);
        await sleep(1_000);
      }
    };
    const beatLoop = beat();
    const jobIds: string[] = [];
    const store = new jobStore.JobStore(cmd, keys, 100_000);
    stack.defer("remove the writer from the fleet", async () => {
      beating = false;
      await beatLoop;
      // Its jobs end (terminal, so nobody settles them later) and its node record goes away.
      for (const id of jobIds)
        await store.update(id, owner, { status: "Finished", exitCode: 0 }).catch(() => undefined);
      await cmd.del(keys.node(WRITER), keys.nodeJobs(WRITER));
      await cmd.zrem(keys.nodes, WRITER);
    });

    const nowIso = new Date().toISOString();
    for (let i = 0; i < JOBS; i++) {
      const id = `fanout-${i.toString().padStart(3, "0")}`;
      await store.create(
        {
          id,
          name: id,
          user: "bench",
          command: "true",
          status: "Running",
          submissionTime: nowIso,
          lastUpdateTime: nowIso,
        } as Parameters<typeof store.create>[0],
        owner,
        [],
      );
      jobIds.push(id);
    }

    // Receivers: the HTTP stream on node C (node-3), and the raw subscriber.
    const nodeC = new Http(fleet.nodes[2]!.url, token, stack, 1);
    const received = new Map<number, Received>();
    const bucket = (phase: number) => {
      let r = received.get(phase);
      if (!r) {
        r = { latencies: [], counts: new Map() };
        received.set(phase, r);
      }
      return r;
    };
    const record = (phase: number, seq: number, sent: number, at: number) => {
      const r = bucket(phase);
      r.latencies.push(at - sent);
      r.counts.set(seq, (r.counts.get(seq) ?? 0) + 1);
    };
    let streamError: string | undefined;
    const abort = new AbortController();
    stack.defer("close the status stream", () => abort.abort());
    const stream = await nodeC.stream(
      "/jobs/*/status",
      (msg, at) => {
        if (msg.error) streamError ??= JSON.stringify(msg.error);
        const m = typeof msg.statusMessage === "string" ? msg.statusMessage : "";
        if (!m.startsWith("b ")) return;
        const [, phase, seq, sent] = m.split(" ");
        record(Number(phase), Number(seq), Number(sent), at);
      },
      abort.signal,
    );
    void stream.done.catch((err: Error) => {
      streamError ??= err.message;
    });

    const rawChannel = `${prefix}:bench:raw`;
    const sub = await redis.connect("bench-fanout-raw-subscriber");
    // The same subscriber also listens on the fleet's events channel, as node C's status bus does:
    // the part of the latency before node C (script → publish → a subscriber), recorded under -phase.
    const statusMessage = /"statusMessage":"b (\d+) (\d+) ([\d.]+)"/;
    sub.on("message", (ch: string, message: string) => {
      const at = monoMs();
      if (ch === rawChannel) {
        const [phase, seq, sent] = message.split(" ");
        record(RAW + Number(phase), Number(seq), Number(sent), at);
        return;
      }
      const m = statusMessage.exec(message);
      if (m) record(BUS + Number(m[1]), Number(m[2]), Number(m[3]), at);
    });
    await sub.subscribe(rawChannel, keys.eventsChannel);

    // The raw relay (bench/raw-relay.ts): the same raw messages, carried by one more process to its
    // HTTP client, as node C carries the fleet's events to ours.
    const relayProc = fork(
      fileURLToPath(new URL("./raw-relay.js", import.meta.url)),
      [String(redis.port), rawChannel],
      {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      },
    );
    stack.defer("stop the raw relay", () => stopProcess(relayProc));
    const relayPort = await new Promise<number>((resolve, reject) => {
      relayProc.once("message", (m) => resolve((m as { port: number }).port));
      relayProc.once("exit", (code) => reject(new Error(`raw relay exited with ${code}`)));
    });
    const relayStream = await new Http(`http://127.0.0.1:${relayPort}`, token, stack, 1).stream(
      "/",
      (msg, at) => {
        const [phase, seq, sent] = String(msg.m).split(" ");
        record(RELAY + Number(phase), Number(seq), Number(sent), at);
      },
      abort.signal,
    );
    void relayStream.done.catch((err: Error) => {
      streamError ??= `raw relay: ${err.message}`;
    });

    const data: WriterData = {
      redisUrl: redis.url,
      prefix,
      owner,
      jobIds,
      rawChannel,
      eventRetention: 100_000,
    };
    const worker = new Worker(new URL("./fanout-writer.js", import.meta.url), { workerData: data });
    let workerError: Error | undefined;
    worker.on("error", (err) => {
      workerError = err;
    });
    stack.defer("stop the writer thread", async () => {
      worker.postMessage("close");
      await Promise.race([new Promise((r) => worker.once("exit", r)), sleep(2_000)]);
      await worker.terminate();
    });

    let phaseNo = 0;
    const runPhase = async (kind: PhaseRequest["kind"], rate: number, label = "", ms = durationMs) => {
      const phase = ++phaseNo;
      const req: PhaseRequest = {
        phase,
        kind,
        rate,
        durationMs: rate === 0 ? Math.min(ms, 3_000) : ms,
        window: rate === 0 ? 64 : 5_000,
      };
      const r0 = await redisSnapshot(redis);
      const pids = fleet.nodes.map((x) => x.pid!);
      // The relay's CPU beside the nodes': the least a process can spend carrying a change.
      const cpuPids = [...pids, relayProc.pid!];
      const cpu0 = cpuPids.map(procCpuMs);
      // Whether the machine had a core free: its busy share, and how long node C's event loop, the
      // relay's and this process's (the clients) waited for a CPU while runnable.
      const waitPids = [pids[2]!, relayProc.pid!, process.pid];
      const wait0 = waitPids.map(procMainThreadWaitMs);
      const faults0 = waitPids.map(procFaults);
      const ticks0 = machineCpuTicks();
      // Node C's GC pauses and event-loop delay over the phase, from its /metrics.
      const pauses0 = await scrapePauses(fleet.nodes[2]!.url);
      const t0 = monoMs();
      // With BENCH_PROFILE_DIR (bench/cpu-profile.cjs): every node's profile and GC over the phase.
      const profile = () => {
        if (process.env.BENCH_PROFILE_DIR) for (const pid of pids) process.kill(pid, "SIGUSR2");
      };
      profile();
      const report = await new Promise<PhaseReport>((resolve, reject) => {
        const onMsg = (m: PhaseReport & { error?: string }) => {
          if (m.phase !== phase) return;
          worker.off("message", onMsg);
          if (m.error) reject(new Error(`writer: ${m.error}`));
          else resolve(m);
        };
        worker.on("message", onMsg);
        worker.postMessage(req);
      });
      profile();
      const phaseSec = (monoMs() - t0) / 1000;
      const pauses1 = await scrapePauses(fleet.nodes[2]!.url);
      const gc = {
        count: pauses1.gc.count - pauses0.gc.count,
        ms: pauses1.gc.ms - pauses0.gc.ms,
        over10ms: pauses1.gc.over10ms - pauses0.gc.over10ms,
      };
      const lag = pauses1.lag;
      const waitPerSec = waitPids.map((pid, i) => (procMainThreadWaitMs(pid) - wait0[i]!) / phaseSec);
      const majorFaults = waitPids.map((pid, i) => procFaults(pid).major - faults0[i]!.major);
      const ticks1 = machineCpuTicks();
      const busy = (ticks1.busy - ticks0.busy) / Math.max(1, ticks1.total - ticks0.total);
      const rd = redisDelta(r0, await redisSnapshot(redis));
      // Node CPU per change: node-1 and node-2 only receive the events; node-3 also streams them.
      const cpuPerEvent = cpuPids.map(
        (pid, i) => ((procCpuMs(pid) - cpu0[i]!) / Math.max(1, report.acked)) * 1000,
      );
      if (workerError) throw workerError;
      // Let stragglers arrive (bounded).
      const deadline = monoMs() + 5_000;
      while (monoMs() < deadline && (received.get(phase)?.counts.size ?? 0) < report.acked) await sleep(20);
      const r = bucket(phase);
      let lost = 0;
      let dup = 0;
      for (let seq = 0; seq < report.sent; seq++) {
        const c = r.counts.get(seq) ?? 0;
        if (c > 1) dup += c - 1;
      }
      // Only acknowledged writes must arrive; a write that failed may or may not have happened.
      lost = Math.max(0, report.acked - [...r.counts.keys()].filter((s) => s < report.sent).length);
      const s = summarize(r.latencies);
      const bus = summarize(received.get(BUS + phase)?.latencies ?? []);
      const raw = summarize(received.get(RAW + phase)?.latencies ?? []);
      const relay = summarize(received.get(RELAY + phase)?.latencies ?? []);
      const achieved = report.acked / (report.elapsedMs / 1000);
      ctx.log(
        `  ${label}@ ${rate ? `${fmtNum(rate)}/s` : "max"}: sent ${report.sent}, acked ${report.acked}, errors ${report.errors}` +
          `${report.firstError ? ` (${report.firstError})` : ""}, behind ${report.behind}, achieved ${fmtNum(achieved)}/s;` +
          ` at the client on node C: received ${r.counts.size}, lost ${lost}, dup ${dup},` +
          ` p50 ${fmtMs(s.p50)} p99 ${fmtMs(s.p99)} max ${fmtMs(s.max)};` +
          ` at a plain subscriber of the events channel: p50 ${fmtMs(bus.p50)} p99 ${fmtMs(bus.p99)} max ${fmtMs(bus.max)};` +
          (kind === "both"
            ? ` raw PUBLISH at the same moments: p50 ${fmtMs(raw.p50)} p99 ${fmtMs(raw.p99)} max ${fmtMs(raw.max)};` +
              ` the same through the raw relay: p50 ${fmtMs(relay.p50)} p99 ${fmtMs(relay.p99)} max ${fmtMs(relay.max)};`
            : "") +
          ` Redis CPU ${fmtPct(rd.cpuShare, 1)}, ${rd.command("evalsha").usecPerCall.toFixed(1)} µs per update_job;` +
          ` node CPU per change: ${cpuPerEvent.map((c) => `${c.toFixed(0)} µs`).join(" / ")} (node-1 / node-2 / node-3 with the client / the raw relay);` +
          ` machine busy ${fmtPct(busy, 0)} of ${cpus().length} cores; waiting for a CPU, ms per s:` +
          ` ${waitPerSec.map((w) => w.toFixed(1)).join(" / ")} (node C / raw relay / the clients);` +
          ` node C's GC: ${gc.count} pauses, ${gc.ms.toFixed(1)} ms, ${gc.over10ms} over 10 ms;` +
          ` its event-loop delay beyond the timer p99 ${fmtMs(lag.p99)} max ${fmtMs(lag.max)};` +
          ` major page faults ${majorFaults.join(" / ")} (node C / raw relay / the clients)`,
      );
      return {
        report,
        s,
        bus,
        raw,
        relay,
        lost,
        dup,
        achieved,
        rd,
        cpuPerEvent,
        busy,
        waitPerSec,
        gc,
        lag,
        majorFaults,
      };
    };

    // Warm-up, not measured: node C's first load since it started (the measures before this one
    // leave it idle). Its first collections clear what starting left in its heap: a scavenge of
    // 14–23 ms and a mark-compact of 9–25 ms (docs/benchmarks.md, session 14), paid once after a
    // start. They are printed, so they stay visible, and the measured phases start from a node that
    // has carried load, as the bench's own clients and writer have.
    const warm = await runPhase("both", 5_000, "warm-up ", 2_000);
    ctx.row({
      measure: MEASURE,
      metric: "  warm-up, not measured: node C's first load since start, p99; its GC pauses",
      value: `${fmtMs(warm.s.p99)}; ${warm.gc.count}, ${warm.gc.ms.toFixed(1)} ms, ${warm.gc.over10ms} over 10 ms`,
      baseline: `${fmtMs(warm.relay.p99)} raw relay, ${fmtMs(warm.raw.p99)} raw pub/sub`,
      ratio: `${fmtRatio(warm.s.p99 / warm.relay.p99)} the relay's p99`,
    });

    for (const rate of [1_000, 5_000]) {
      const ours = await runPhase("both", rate);
      const at5k = rate === 5_000;
      const rateLabel = `${fmtNum(rate)}/s`;
      ctx.row({
        measure: MEASURE,
        metric: `p50 latency @ ${rateLabel} (n=${ours.s.n})`,
        value: fmtMs(ours.s.p50),
        baseline: `${fmtMs(ours.raw.p50)} raw pub/sub`,
        ratio: fmtRatio(ours.s.p50 / ours.raw.p50),
      });
      ctx.row({
        measure: MEASURE,
        metric: `p99 / max latency @ ${rateLabel}`,
        value: `${fmtMs(ours.s.p99)} / ${fmtMs(ours.s.max)}`,
        baseline: `${fmtMs(ours.raw.p99)} / ${fmtMs(ours.raw.max)} raw`,
        ratio: fmtRatio(ours.s.p99 / ours.raw.p99),
        ...(at5k
          ? {
              target: "p99 ≤ 1.25x raw and < 10 ms",
              verdict: verdict(ours.s.p99 <= 1.25 * ours.raw.p99 && ours.s.p99 < 10),
            }
          : {}),
      });
      ctx.row({
        measure: MEASURE,
        metric: "  raw pub/sub through the raw relay (one hop, no logic), p50 / p99",
        value: `${fmtMs(ours.relay.p50)} / ${fmtMs(ours.relay.p99)}`,
        baseline: `${fmtMs(ours.raw.p50)} / ${fmtMs(ours.raw.p99)} raw pub/sub`,
        ratio: `${fmtRatio(ours.relay.p99 / ours.raw.p99)} raw at p99; fleet ${fmtRatio(ours.s.p99 / ours.relay.p99)} the relay's p99`,
      });
      ctx.row({
        measure: MEASURE,
        metric: "  same events at a plain subscriber, p50 / p99",
        value: `${fmtMs(ours.bus.p50)} / ${fmtMs(ours.bus.p99)}`,
        baseline: "(script → pub/sub, no node)",
      });
      ctx.row({
        measure: MEASURE,
        metric: "  CPU per change: node C / others, and the raw relay",
        value: `${ours.cpuPerEvent[2]!.toFixed(0)} µs`,
        baseline: `${ours.cpuPerEvent[0]!.toFixed(0)} / ${ours.cpuPerEvent[1]!.toFixed(0)} µs (no client); raw relay ${ours.cpuPerEvent[3]!.toFixed(0)} µs`,
      });
      ctx.row({
        measure: MEASURE,
        metric: "  waiting for a CPU, ms per s: node C / raw relay / clients",
        value: ours.waitPerSec.map((w) => w.toFixed(1)).join(" / "),
        baseline: `machine busy ${fmtPct(ours.busy, 0)} of ${cpus().length} cores`,
      });
      ctx.row({
        measure: MEASURE,
        metric: "  node C's GC pauses (count, total, over 10 ms); event-loop delay p99 / max",
        value: `${ours.gc.count}, ${ours.gc.ms.toFixed(1)} ms, ${ours.gc.over10ms}; ${fmtMs(ours.lag.p99)} / ${fmtMs(ours.lag.max)}`,
        baseline: "(its /metrics over the phase)",
      });
      ctx.row({
        measure: MEASURE,
        metric: `changes carried @ ${rateLabel}: lost / dup`,
        value: `${fmtNum(ours.achieved)}/s: ${ours.lost} / ${ours.dup}`,
        baseline: `${fmtPct(ours.achieved / pubCapacity, 1)} of PUBLISH/s, ${fmtPct(ours.achieved / setCapacity, 1)} of SET/s`,
        ratio: `Redis CPU ${fmtPct(ours.rd.cpuShare, 0)}, ${((ours.rd.cpuSec * 1e6) / Math.max(1, ours.report.acked)).toFixed(0)} µs/change`,
        ...(at5k
          ? {
              target: "0 lost, 0 dup",
              verdict: verdict(ours.lost === 0 && ours.dup === 0 && ours.report.errors === 0),
            }
          : {}),
      });
    }
    const max = await runPhase("store", 0);
    ctx.row({
      measure: MEASURE,
      metric: "max changes/s (64 in flight)",
      value: `${fmtNum(max.achieved)}/s`,
      baseline: `redis-benchmark PUBLISH ${fmtNum(pubCapacity)}/s; p99 ${fmtMs(max.s.p99)}, lost ${max.lost}, dup ${max.dup}`,
      ratio: `${fmtRatio(max.achieved / pubCapacity)} PUBLISH/s; Redis CPU ${fmtPct(max.rd.cpuShare, 0)}, ${max.rd.command("evalsha").usecPerCall.toFixed(0)} µs/update`,
    });
    if (streamError) throw new Error(`status stream on node C failed: ${streamError}`);
  } finally {
    await stack.close();
  }
}
