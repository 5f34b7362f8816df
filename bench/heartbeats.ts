// 3. Heartbeat scale: N simulated nodes registered with `register_node` and beating with the real
// `heartbeat` script at the default period (1 s), spread evenly over the period, in the shared
// fleet's prefix, so its three real nodes see them. Measured: Redis CPU time over wall time
// (INFO cpu), commands/s (INFO stats; commands run inside scripts count too), EVALSHA calls/s and
// µs per call (INFO commandstats), `GET /nodes` latency of a real node, and the time the real node
// takes to report a node that went silent as not online.
// A real node also reads the silent range of the zset every heartbeat and the whole zset every
// `fullRefreshBeats(N)`th (10 up to 100 nodes, then N/10; before session 7, every 10th); a second
// window adds that read for simulated nodes (at most a million zset entries read per second; the
// Redis CPU per read is projected linearly to all nodes), the whole per-node load of such a fleet.
// Baselines in the same run: `redis-benchmark -t ping,set` (capacity in requests/s) and
// `redis-benchmark EVALSHA <heartbeat>` (heartbeats/s one Redis takes).
// DESIGN: 10,000 nodes at the default period use under 10% of Redis's capacity (full mode measures
// 10,000; quick mode stops at 1,000 and gives its verdict there). The verdict needs both shares under
// 10%: EVALSHA calls/s ÷ SET capacity, and beats/s ÷ heartbeat capacity (redis-benchmark, 50 clients,
// no pipelining: like a real fleet, one connection per node, where the simulation pipelines).
// Also printed: Redis CPU per beat, pipelined (the simulation) and not (redis-benchmark), and what
// N unpipelined beats a second take of the one Redis core.
import { readFileSync } from "node:fs";

import net from "node:net";
import { join } from "node:path";
import type { ScriptedRedis } from "../src/cluster/scripts.js";
import {
  type Ctx,
  DIST,
  fmtMs,
  fmtNum,
  fmtPct,
  Http,
  keysModule,
  monoMs,
  nodeTable,
  now,
  procCpuMs,
  redisBenchmark,
  redisDelta,
  redisSnapshot,
  Stack,
  scripts,
  sleep,
  summarize,
  until,
  verdict,
} from "./lib.js";

const MEASURE = "heartbeats";
const PERIOD_MS = 1_000;
const OFFLINE_AFTER_MS = 3_000;
/** Sequential GET /readyz per scale (what HAProxy asks each node twice a second). */
const READY_CHECKS = 200;

/**
 * A connection that sends commands and throws the replies away unparsed (reading a 1,000-entry
 * zset a thousand times a second would otherwise measure the client's parser).
 */
class BlindConnection {
  private readonly sock: net.Socket;

  constructor(port: number) {
    this.sock = net.connect(port, "127.0.0.1");
    this.sock.on("error", () => undefined);
    this.sock.on("data", () => undefined);
  }

  send(buf: Buffer): void {
    this.sock.write(buf);
  }

  close(): void {
    this.sock.destroy();
  }
}

function resp(...args: string[]): Buffer {
  return Buffer.from(
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`,
  );
}

/** Simulated nodes: ids, epochs, and a beat loop that spreads N beats evenly over each period. */
class Simulation {
  readonly ids: string[];
  private readonly epochs: number[] = [];
  readonly lastAck: number[];
  readonly dead = new Set<number>();
  acked = 0;
  errors = 0;
  fenced = 0;
  lagMax = 0;
  private inflight = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** How many nodes also read the whole zset after each beat, through `blind` connections. */
  refreshers = 0;
  private readonly nodeScripts: InstanceType<typeof scripts.NodeScripts>[];

  constructor(
    private readonly prefix: string,
    private readonly conns: ScriptedRedis[],
    private readonly blind: BlindConnection[],
    private readonly n: number,
  ) {
    this.ids = Array.from({ length: n }, (_, i) => `sim-${i.toString().padStart(5, "0")}`);
    const keys = keysModule.fleetKeys(prefix);
    this.nodeScripts = conns.map((c) => new scripts.NodeScripts(c, keys));
    this.lastAck = new Array(n).fill(0);
  }

  async register(): Promise<void> {
    const keys = keysModule.fleetKeys(this.prefix);
    const conn = new scripts.NodeScripts(this.conns[0]!, keys);
    for (let i = 0; i < this.n; i += 500) {
      const batch = this.ids.slice(i, i + 500);
      const res = await Promise.all(
        batch.map((id) =>
          conn.registerNode(id, {
            host: `sim-host-${id}`,
            ipv4: "127.0.0.1",
            port: "9",
            status: "Online",
            runningJobs: 0,
          }),
        ),
      );
      res.forEach((r, j) => {
        this.epochs[i + j] = r.epoch;
      });
    }
  }

  start(): void {
    const keys = keysModule.fleetKeys(this.prefix);
    const zrange = resp("ZRANGE", keys.nodes, "0", "-1", "WITHSCORES");
    const start = monoMs();
    let sent = 0;
    this.loop = (async () => {
      while (!this.stopped) {
        const due = Math.floor(((monoMs() - start) / PERIOD_MS) * this.n);
        if (due - sent > this.lagMax) this.lagMax = due - sent;
        for (; sent < due; sent++) {
          const i = sent % this.n;
          if (this.dead.has(i)) continue;
          const id = this.ids[i]!;
          const conn = this.nodeScripts[i % this.nodeScripts.length]!;
          conn.heartbeat({ nodeId: id, epoch: this.epochs[i]! }, "Online", 0).then(
            (r) => {
              if (r.fenced) this.fenced++;
              this.acked++;
              this.lastAck[i] = monoMs();
            },
            () => {
              this.errors++;
            },
          );
          // Every real node's tick also reads the silent range of the zset (lost-node check),
          // usually empty: ZRANGEBYSCORE nodes -inf <now - LOST_AFTER>.
          this.blind[i % this.blind.length]!.send(
            resp("ZRANGEBYSCORE", keys.nodes, "-inf", String(Date.now() - 30_000), "WITHSCORES"),
          );
          if (i < this.refreshers) this.blind[i % this.blind.length]!.send(zrange);
        }
        await sleep(5);
      }
    })();
  }

  /** Stops beating and waits (bounded) for the beats already sent, so none lands after remove(). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    const deadline = monoMs() + 30_000;
    while (this.inflight > 0 && monoMs() < deadline) await sleep(10);
  }

  async remove(): Promise<void> {
    const keys = keysModule.fleetKeys(this.prefix);
    const conn = this.conns[0]!;
    for (let i = 0; i < this.n; i += 1000) {
      const p = conn.pipeline();
      for (const id of this.ids.slice(i, i + 1000)) {
        p.del(keys.node(id));
        p.zrem(keys.nodes, id);
        // The notice a leaving node's record change sends: every real node drops it from its table
        // now, not at its next full re-read (every N/10 beats: 17 minutes after 10,000 nodes).
        p.publish(keys.nodesChannel, id);
      }
      await p.exec();
    }
  }
}

export async function heartbeats(ctx: Ctx): Promise<void> {
  const stack = new Stack(MEASURE);
  try {
    const scales = ctx.full ? [100, 1_000, 10_000] : [100, 1_000];
    const targetScale = scales.at(-1)!;
    const windowMs = ctx.full ? 10_000 : 2_500;
    const { redis, fleet, prefix, token } = await ctx.shared();
    const real = new Http(fleet.nodes[0]!.url, token, stack, 1);
    const simsOnline = async () =>
      (await real.json<{ nodes: { id: string; online: boolean }[] }>("GET", "/nodes")).body.nodes.filter(
        (x) => x.online && x.id.startsWith("sim-"),
      ).length;

    // Baselines: generic capacity, then the heartbeat script itself at full speed.
    const n = ctx.full ? 200_000 : 20_000;
    const generic = await redisBenchmark(redis, n, ["-t", "ping,set"], 3);
    const base = generic.rates;
    const capacity = base.SET ?? Number.NaN;
    ctx.log(
      `  redis-benchmark (-n ${n}, 50 clients): ${Object.entries(base)
        .map(([k, v]) => `${k} ${fmtNum(v)}/s`)
        .join(", ")} (${generic.cpuUsPerRequest.toFixed(1)} µs Redis CPU per request)`,
    );
    const lua = ["lib.lua", "heartbeat.lua"]
      .map((f) => readFileSync(join(DIST, "cluster", "lua", f), "utf8"))
      .join("\n");
    const admin = await redis.connect("bench-hb-admin");
    const sha = (await admin.script("LOAD", lua)) as string;
    const capKeys = keysModule.fleetKeys("hbcap");
    const capIds = Array.from({ length: 1000 }, (_, i) => `cap:${i.toString().padStart(12, "0")}`);
    const capConn = scripts.defineScripts(await redis.connect("bench-hb-cap"));
    await Promise.all(
      capIds.map((id) => new scripts.NodeScripts(capConn, capKeys).registerNode(id, { status: "Online" })),
    );
    const hb = await redisBenchmark(redis, n / 2, [
      ...["-r", "1000"],
      ...["EVALSHA", sha, "2", capKeys.node("cap:__rand_int__"), capKeys.nodes, "cap:__rand_int__", "1"],
      ...[capKeys.nodesChannel, "Online", "0"],
    ]);
    const hbCapacity = Object.values(hb.rates)[0] ?? Number.NaN;
    ctx.log(
      `  redis-benchmark EVALSHA heartbeat (-n ${n / 2}, 50 clients): ${fmtNum(hbCapacity)}/s (${hb.cpuUsPerRequest.toFixed(1)} µs Redis CPU per beat)`,
    );
    await admin.del(...capIds.map((id) => capKeys.node(id)), capKeys.nodes);
    ctx.row({
      measure: MEASURE,
      metric: "baseline: redis-benchmark SET / PING",
      value: `${fmtNum(capacity)} / ${fmtNum(base.PING_MBULK ?? Number.NaN)} req/s`,
      baseline: `${generic.cpuUsPerRequest.toFixed(1)} µs Redis CPU per request`,
    });
    ctx.row({
      measure: MEASURE,
      metric: "baseline: redis-benchmark EVALSHA heartbeat",
      value: `${fmtNum(hbCapacity)} beats/s`,
      baseline: `${hb.cpuUsPerRequest.toFixed(1)} µs Redis CPU per beat (unpipelined)`,
    });

    const conns: ScriptedRedis[] = [];
    for (let i = 0; i < 4; i++)
      conns.push(scripts.defineScripts(await redis.connect(`bench-hb-${i}`, { autoPipelining: true })));
    // Every real node's count of known nodes (GET /status), to see the simulated ones leave again.
    const statusOf = fleet.nodes.map((node) => new Http(node.url, token, stack, 1));
    const known = async (http: Http) =>
      (await http.json<{ fleet: { total: number } }>("GET", "/status")).body.fleet.total;
    const knownBefore = await known(statusOf[0]!);
    for (const size of scales) {
      const blind = Array.from({ length: 4 }, () => new BlindConnection(redis.port));
      const sim = new Simulation(prefix, conns, blind, size);
      let removed = false;
      stack.defer(`remove ${size} simulated nodes`, async () => {
        await sim.stop();
        if (!removed) await sim.remove();
      });
      // Closing a connection frees whatever replies Redis still holds for it.
      const closeBlind = () => {
        for (const b of blind) b.close();
      };
      stack.defer("close blind connections", closeBlind);
      await sim.register();
      sim.start();
      await until(
        "the real node to see every simulated node online",
        async () => (await simsOnline()) >= size,
        30_000,
        200,
      );
      await sleep(1_000);

      // GET /nodes answers grow with the fleet (about 1 MB at 5,000 nodes, 2 MB at 10,000): poll less often then,
      // so that parsing them does not starve this process's own heartbeat loop.
      const pollMs = Math.max(20, size / 20);
      // Window A: heartbeats only, with GET /nodes on the real node every 50 ms (or pollMs).
      const nodesLatency: number[] = [];
      const a0 = await redisSnapshot(redis);
      const acked0 = sim.acked;
      const windowEnd = now() + windowMs;
      while (now() < windowEnd) {
        const t0 = now();
        const res = await real.json<{ nodes: unknown[] }>("GET", "/nodes");
        nodesLatency.push(now() - t0);
        if (res.status !== 200 || res.body.nodes.length < size)
          throw new Error(`GET /nodes: HTTP ${res.status}`);
        await sleep(Math.max(50, pollMs));
      }
      const a1 = await redisSnapshot(redis);
      const hbRate = ((sim.acked - acked0) / (a1.at - a0.at)) * 1000;
      const a = redisDelta(a0, a1);
      const evalsha = a.command("evalsha");

      // What HAProxy's health checks cost a node that knows this many: GET /readyz, sequentially.
      const readyLatency: number[] = [];
      const realPid = fleet.nodes[0]!.pid!;
      const readyCpu0 = procCpuMs(realPid);
      for (let i = 0; i < READY_CHECKS; i++) {
        const t0 = now();
        const res = await real.json("GET", "/readyz");
        readyLatency.push(now() - t0);
        if (res.status !== 200) throw new Error(`GET /readyz: HTTP ${res.status}`);
      }
      const readyCpuUs = ((procCpuMs(realPid) - readyCpu0) / READY_CHECKS) * 1000;
      const ready = summarize(readyLatency);

      // Dead node: one simulated node stops beating; the real node must report it offline.
      const victim = 0;
      sim.dead.add(victim);
      await sleep(PERIOD_MS / size + 20); // let an in-flight beat land
      const lastBeat = sim.lastAck[victim]!;
      const victimId = sim.ids[victim]!;
      const noticed = await until(
        "the real node to report the silent node offline",
        async () => {
          const res = await real.json<{ nodes: { id: string; online: boolean }[] }>("GET", "/nodes");
          return res.body.nodes.find((x) => x.id === victimId)?.online === false ? monoMs() : 0;
        },
        OFFLINE_AFTER_MS + 10_000,
        pollMs,
      );
      const noticeMs = noticed - lastBeat;

      // Window B: every node's whole tick (heartbeat + re-read of the nodes zset). At most a
      // million zset entries a second are read (1,000 nodes; 100 of 10,000): the Redis CPU per read is
      // then projected linearly to every node, since the replies would swamp this machine.
      const offeredZr = Math.min(size, Math.floor(1_000_000 / size));
      sim.refreshers = offeredZr;
      await sleep(500);
      const b0 = await redisSnapshot(redis);
      await sleep(windowMs);
      const b1 = await redisSnapshot(redis);
      sim.refreshers = 0;
      closeBlind();
      const counts = { errors: sim.errors, fenced: sim.fenced, lagMax: sim.lagMax };
      const b = redisDelta(b0, b1);
      const zr = b.command("zrange");
      const saturated = zr.perSec < 0.9 * offeredZr;
      // Redis CPU time per re-read, from CPU used over reads done: robust to Redis being starved
      // of CPU by other work (wall time per call is not). The whole tick of N nodes is projected.
      const cpuPerRead = (b.cpuShare - a.cpuShare) / zr.perSec;
      // A real node reads the whole zset only every fullRefreshBeats(N) beats (node-table.ts); it
      // did so every 10th beat before session 7, and every beat before that (both kept for comparison).
      const refreshBeats = nodeTable.fullRefreshBeats(size);
      const tickCpuEveryBeat = a.cpuShare + cpuPerRead * size;
      const tickCpuEvery10 = a.cpuShare + (cpuPerRead * size) / 10;
      const tickCpu = a.cpuShare + (cpuPerRead * size) / refreshBeats;
      const projected = saturated || size > offeredZr;
      await sim.stop();
      await sim.remove();
      removed = true;
      await until(
        "every real node to forget the simulated nodes",
        async () => (await Promise.all(statusOf.map(known))).every((n) => n <= knownBefore),
        30_000,
        200,
      );

      const lat = summarize(nodesLatency);
      const reqShare = evalsha.perSec / capacity;
      const beatShare = hbRate / hbCapacity;
      ctx.log(
        `  ${fmtNum(size)} nodes: ${fmtNum(hbRate)} beats/s acked (errors ${counts.errors}, fenced ${counts.fenced}, max lag ${counts.lagMax} beats);` +
          ` Redis CPU ${fmtPct(a.cpuShare)}, ${fmtNum(a.opsPerSec)} cmds/s incl. script calls (${fmtNum(evalsha.perSec)} EVALSHA/s,` +
          ` ${evalsha.usecPerCall.toFixed(1)} µs each); GET /nodes p50 ${fmtMs(lat.p50)} p99 ${fmtMs(lat.p99)} (n=${lat.n});` +
          ` offline noticed after ${fmtMs(noticeMs, 0)} (polled every ${pollMs} ms); with zset re-reads: CPU ${fmtPct(b.cpuShare)},` +
          ` ${fmtNum(zr.perSec)} of ${fmtNum(offeredZr)} ZRANGE/s offered, ${zr.usecPerCall.toFixed(0)} µs wall` +
          ` and ${(cpuPerRead * 1e6).toFixed(0)} µs Redis CPU each → ${fmtNum(size)} nodes' ticks need CPU ${fmtPct(tickCpu)}`,
      );
      const atTarget = size === targetScale;
      // Redis CPU per beat in the simulation (pipelined, with the idle fleet's own load in it), and
      // what the same beats would take unpipelined (one connection per node), at redis-benchmark's
      // measured CPU per beat.
      const cpuPerBeatUs = (a.cpuShare * 1e6) / hbRate;
      const unpipelinedShare = (hbRate * hb.cpuUsPerRequest) / 1e6;
      ctx.row({
        measure: MEASURE,
        metric: `${fmtNum(size)} nodes: heartbeats`,
        value: `${fmtNum(hbRate)} beats/s, Redis CPU ${fmtPct(a.cpuShare, 1)} (${cpuPerBeatUs.toFixed(1)} µs/beat pipelined)`,
        baseline: `${fmtNum(capacity)} SET/s; ${fmtNum(hbCapacity)} beats/s`,
        ratio: `${fmtPct(reqShare, 1)}; ${fmtPct(beatShare, 1)}; unpipelined CPU ${fmtPct(unpipelinedShare, 1)}`,
        ...(atTarget
          ? {
              target: `< 10% of capacity (both)${size < 10_000 ? `; quick: ${fmtNum(size)} of 10,000 nodes` : ""}`,
              verdict: verdict(reqShare < 0.1 && beatShare < 0.1),
            }
          : {}),
      });
      ctx.row({
        measure: MEASURE,
        metric: `${fmtNum(size)} nodes: whole tick (beat + silent range; full re-read every ${fmtNum(refreshBeats)} beats)`,
        value:
          `Redis CPU ${fmtPct(tickCpu, 1)}${projected ? " (projected)" : ""}; with a re-read every 10 beats` +
          ` ${fmtPct(tickCpuEvery10, 1)}, every beat ${fmtPct(tickCpuEveryBeat, 1)}`,
        baseline: `${(cpuPerRead * 1e6).toFixed(0)} µs CPU per ZRANGE`,
        ratio: `${fmtNum(zr.perSec)}/${fmtNum(offeredZr)} reads/s done`,
      });
      ctx.row({
        measure: MEASURE,
        metric: `${fmtNum(size)} nodes: GET /nodes p50 / p99 (n=${lat.n})`,
        value: `${fmtMs(lat.p50)} / ${fmtMs(lat.p99)}`,
      });
      ctx.row({
        measure: MEASURE,
        metric: `${fmtNum(size)} nodes: GET /readyz (HAProxy's check) p50 / p99 (n=${ready.n})`,
        value: `${fmtMs(ready.p50)} / ${fmtMs(ready.p99)}`,
        baseline: `node CPU ${readyCpuUs.toFixed(0)} µs per check`,
      });
      ctx.row({
        measure: MEASURE,
        metric: `${fmtNum(size)} nodes: silent node reported offline`,
        value: fmtMs(noticeMs, 0),
        target: `≤ OFFLINE_AFTER + 1 beat = ${OFFLINE_AFTER_MS + PERIOD_MS} ms`,
        verdict: verdict(noticeMs <= OFFLINE_AFTER_MS + PERIOD_MS),
      });
    }
  } finally {
    await stack.close();
  }
}
